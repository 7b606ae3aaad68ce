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

    // The server notices a closed connection on its own schedule: retries are spaced out.
    private static async Task<bool> Pause()
    {
        await Task.Delay(100, Token);
        return true;
    }

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
        // Alice's first request is in flight for as long as its body is unfinished: the test, not
        // the machine's speed, decides when it ends.
        using var first = new System.Net.Sockets.TcpClient();
        await first.ConnectAsync(server.Address.Host, server.Address.Port, Token);
        var head = $"POST /v1/citations HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer alice\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"question\":";
        await first.GetStream().WriteAsync(System.Text.Encoding.ASCII.GetBytes(head), Token);

        HttpResponseMessage second;
        int tries = 0;
        do
            second = await server.PostAsync("/v1/citations", new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer }, key: "alice");
        while (second.StatusCode == HttpStatusCode.OK && ++tries < 150 && await Pause()); // until the server has taken the first request in
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.NotNull(second.Headers.RetryAfter);
        Assert.Contains("1 at once (Server:PerClientConcurrency)", await Detail(second));

        var other = await server.PostAsync("/v1/citations", new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer }, key: "bob");
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);

        // Alice leaves; her next request is let in.
        first.Close();
        HttpResponseMessage again;
        tries = 0;
        do
            again = await server.PostAsync("/v1/citations", new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer }, key: "alice");
        while (again.StatusCode == HttpStatusCode.TooManyRequests && ++tries < 100 && await Pause());
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
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
