using System.Net;
using System.Text.Json.Nodes;

namespace Mirage.Host.Tests.Server;

/// <summary>One client cannot hold the service: costly work is refused before it starts, methods can be turned off, and each client has its own limits.</summary>
public sealed class CostLimitTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static object Costly => new
    {
        question = RunningServer.Question,
        passages = RunningServer.Passages,
        answer = string.Join(" ", Enumerable.Repeat(RunningServer.Answer, 4)),
        options = new { method = "integrated_gradients", cti_std = -5 },
    };

    private static async Task<string> Detail(HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!["detail"]!.GetValue<string>();

    [Fact]
    public async Task ARequestPastTheWorkBudget_Gets400NamingIt_AndTheNextIsServedAtOnce()
    {
        await using var server = await RunningServer.StartAsync();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var refused = await server.PostAsync("/v1/citations", Costly);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var detail = await Detail(refused);
        Assert.Contains("CCI by integrated_gradients", detail);
        Assert.EndsWith("(Server:MaxTokenPasses)", detail);

        var next = await server.PostAsync("/v1/citations", new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer });
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.InRange(watch.Elapsed.TotalSeconds, 0, 30);
    }

    [Fact]
    public async Task MethodsTurnedOff_Get400_OnBothEndpoints()
    {
        await using var server = await RunningServer.StartAsync("--Server:Methods:0=ablation", "--Server:Methods:1=saliency");
        var refused = await server.PostAsync("/v1/citations", Costly);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("Method 'integrated_gradients' is turned off on this server; use ablation, saliency (Server:Methods).", await Detail(refused));

        var chat = await server.PostAsync("/v1/chat/completions", new
        {
            messages = new[] { new { role = "user", content = RunningServer.Question } },
            passages = RunningServer.Passages,
            citations = new { method = "occlusion" },
        });
        Assert.Equal(HttpStatusCode.BadRequest, chat.StatusCode);
        Assert.Contains("'occlusion' is turned off", await Detail(chat));
    }

    [Fact]
    public async Task AClientAtItsConcurrencyLimit_Gets429_WhileAnotherClientIsServed()
    {
        await using var server = await RunningServer.StartAsync("--Server:PerClientConcurrency=1", "--Server:ApiKeys:0=alice", "--Server:ApiKeys:1=bob");
        var body = new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer };
        // The test holds the model, so Alice's first request stays in flight until the test lets go.
        var model = server.Model;
        await model.ComputeGate.WaitAsync(Token);
        var trace = System.Diagnostics.ActivityTraceId.CreateRandom();
        using var started = RunningServer.WhenCiteStarts(trace);
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/citations") { Content = System.Net.Http.Json.JsonContent.Create(body) };
        request.Headers.Authorization = new("Bearer", "alice");
        request.Headers.Add("traceparent", $"00-{trace}-{System.Diagnostics.ActivitySpanId.CreateRandom()}-01");
        var first = server.Http.SendAsync(request, Token);
        // A worker has taken it up (and waits for the model): it holds Alice's one permit.
        await started.Started.WaitAsync(TimeSpan.FromSeconds(60), Token);

        var second = await server.PostAsync("/v1/citations", body, key: "alice");
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.NotNull(second.Headers.RetryAfter);
        Assert.Contains("1 at once (Server:PerClientConcurrency)", await Detail(second));

        // Bob is let in (he waits for the model, not for a limit), and everyone is served once the model is free.
        var other = server.PostAsync("/v1/citations", body, key: "bob");
        model.ComputeGate.Release();
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await other).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("/v1/citations", body, key: "alice")).StatusCode);
    }

    [Fact]
    public async Task AClientPastItsRequestsPerMinute_Gets429_WithRetryAfter_WhileAnotherClientIsServed()
    {
        await using var server = await RunningServer.StartAsync("--Server:PerClientRequestsPerMinute=1", "--Server:ApiKeys:0=alice", "--Server:ApiKeys:1=bob");
        var body = new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer };
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("/v1/citations", body, key: "alice")).StatusCode);
        var refused = await server.PostAsync("/v1/citations", body, key: "alice");
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.InRange(refused.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 1, 60);
        Assert.Contains("1 a minute (Server:PerClientRequestsPerMinute)", await Detail(refused));
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("/v1/citations", body, key: "bob")).StatusCode);
        // Health and the model list are not counted.
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/health", Token)).StatusCode);
    }

    [Fact]
    public async Task AnUnknownMethodInServerMethods_FailsTheStart()
    {
        var app = Mirage.Host.Server.MirageServer.Build(["--urls=http://127.0.0.1:0", "--Server:Methods:0=magic"]);
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => app.StartAsync(Token));
        Assert.Contains("Server:Methods names 'magic'", error.Message);
        await app.DisposeAsync();
    }
}
