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
        await using var server = await RunningServer.StartAsync("--Server:PerClientConcurrency=1", "--Server:ApiKeys:0=alice", "--Server:ApiKeys:1=bob",
            "--Server:MaxTokenPasses=1000000000", "--Server:Concurrency=2");
        // Alice's first request runs for seconds (integrated gradients on every token); she leaves once the others are answered.
        using var leave = CancellationTokenSource.CreateLinkedTokenSource(Token);
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/citations") { Content = System.Net.Http.Json.JsonContent.Create(Costly) };
        request.Headers.Authorization = new("Bearer", "alice");
        var first = server.Http.SendAsync(request, leave.Token);
        await Task.Delay(500, Token);
        var second = await server.PostAsync("/v1/citations", new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer }, key: "alice");
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.NotNull(second.Headers.RetryAfter);
        Assert.Contains("1 at once (Server:PerClientConcurrency)", await Detail(second));

        // Bob is let in (he waits for the model, not for a limit), and is served once Alice leaves.
        var other = server.PostAsync("/v1/citations", new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer }, key: "bob");
        await Task.Delay(200, Token);
        Assert.False(other.IsCompleted);
        await leave.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        Assert.Equal(HttpStatusCode.OK, (await other).StatusCode);
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
