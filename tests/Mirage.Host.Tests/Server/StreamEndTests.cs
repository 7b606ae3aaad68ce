using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Mirage.Host.Tests.Server;

/// <summary>
/// A streamed answer always ends with what the README promises: a finish reason, or an error event,
/// then [DONE]. Once the answer's tokens are out, the tests take the model, so the citations wait for
/// it: the time limit or the shutdown, not the machine's speed, ends the stream.
/// </summary>
public sealed class StreamEndTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    // A streamed answer with passages: its citations come after the tokens.
    private static object CitedChat => new
    {
        messages = new[] { new { role = "user", content = RunningServer.Question } },
        passages = RunningServer.Passages,
        stream = true,
    };

    private static async Task<(StreamReader Reader, HttpResponseMessage Response)> OpenAsync(RunningServer server, object body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(body) };
        var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (new StreamReader(await response.Content.ReadAsStreamAsync(Token)), response);
    }

    // Reads events until one carries answer text; returns the rest of the stream once it ends.
    private static async Task<string> AfterFirstTokenAsync(StreamReader reader, Func<Task> then)
    {
        string? line;
        while ((line = await reader.ReadLineAsync(Token)) is not null && !line.Contains("\"content\":\"", StringComparison.Ordinal))
        {
        }
        await then();
        return await reader.ReadToEndAsync(Token);
    }

    [Fact]
    public async Task AStreamCutByTheTimeLimit_EndsWithAnErrorEventAndDone()
    {
        await using var server = await RunningServer.StartAsync("--Server:RequestTimeoutSeconds=2");
        var model = server.Model;
        var (reader, response) = await OpenAsync(server, CitedChat);
        using (response)
        {
            var rest = await AfterFirstTokenAsync(reader, () => model.ComputeGate.WaitAsync(Token));
            model.ComputeGate.Release();
            var events = rest.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal("data: [DONE]", events[^1].Trim());
            var error = JsonNode.Parse(events[^2].Trim()["data: ".Length..])!["error"]!;
            Assert.Equal("timeout", error["type"]!.GetValue<string>());
            Assert.Contains("request time limit (Server:RequestTimeoutSeconds)", error["message"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task AStreamCutByShutdown_EndsWithAnErrorEventAndDone()
    {
        var server = await RunningServer.StartAsync("--Server:ShutdownTimeoutSeconds=0");
        var model = server.Model;
        var (reader, response) = await OpenAsync(server, CitedChat);
        Task? stopping = null;
        using (response)
        {
            var rest = await AfterFirstTokenAsync(reader, async () =>
            {
                await model.ComputeGate.WaitAsync(Token);
                stopping = server.App.StopAsync(Token);
            });
            model.ComputeGate.Release();
            var events = rest.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal("data: [DONE]", events[^1].Trim());
            var error = JsonNode.Parse(events[^2].Trim()["data: ".Length..])!["error"]!;
            Assert.Contains("shutting down", error["message"]!.GetValue<string>());
        }
        await stopping!;
        await server.DisposeAsync();
    }

    [Fact]
    public async Task AStreamThatReachesMaxTokens_FinishesWithLength_AsTheUnstreamedAnswerDoes()
    {
        await using var server = await RunningServer.StartAsync();
        var body = new { messages = new[] { new { role = "user", content = RunningServer.Question } }, max_tokens = 2, stream = true };
        var (reader, response) = await OpenAsync(server, body);
        using (response)
        {
            var events = (await reader.ReadToEndAsync(Token)).Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e.Trim()["data: ".Length..]).ToList();
            Assert.Equal("[DONE]", events[^1]);
            var reasons = events[..^1].Select(e => JsonNode.Parse(e)!["choices"]![0]!["finish_reason"]?.GetValue<string>()).Where(r => r is not null).ToList();
            Assert.Equal(["length"], reasons);
        }
        var whole = JsonNode.Parse(await (await server.PostAsync("/v1/chat/completions", new { messages = body.messages, max_tokens = 2 })).Content.ReadAsStringAsync(Token))!;
        Assert.Equal("length", whole["choices"]![0]!["finish_reason"]!.GetValue<string>());
    }
}
