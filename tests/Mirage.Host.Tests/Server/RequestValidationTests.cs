using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace Mirage.Host.Tests.Server;

/// <summary>Every mistyped or out-of-range field is a 400 that names the field and what was expected, before any model work.</summary>
public sealed class RequestValidationTests
{
    private static readonly CancellationToken Token = TestContext.Current.CancellationToken;

    private const string Passages = "[{\"text\": \"Lousdrur Rourti works for Cimgun Labs.\"}]";

    private static async Task<(HttpStatusCode Status, string Body)> Post(RunningServer server, string path, string body, string contentType = "application/json")
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(contentType);
        var response = await server.Http.PostAsync(path, content, Token);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(Token));
    }

    [Theory]
    [InlineData("{\"cti_std\": 1e308}", "CtiStdThreshold must be a number between")]
    [InlineData("{\"cti_std\": -1e308}", "CtiStdThreshold must be a number between")]
    [InlineData("{\"top_percent\": \"0.1\"}", "top_percent")]
    [InlineData("{\"top_k\": 2.5}", "top_k")]
    public async Task CitationOptions_OutOfRangeOrMistyped_Get400(string options, string mentioned)
    {
        await using var server = await RunningServer.StartAsync();
        var (status, body) = await Post(server, "/v1/citations", $"{{\"question\": \"q\", \"passages\": {Passages}, \"answer\": \"Lousdrur Rourti works for Cimgun Labs.\", \"options\": {options}}}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(mentioned, JsonNode.Parse(body)!["detail"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("application/jsonfoo")]
    [InlineData("application/json-patch+json")]
    [InlineData("text/plain")]
    [InlineData("application/json; charset=latin1")]
    public async Task OnlyJson_IsAccepted(string contentType)
    {
        await using var server = await RunningServer.StartAsync();
        var (status, _) = await Post(server, "/v1/citations", $"{{\"question\": \"q\", \"passages\": {Passages}, \"answer\": \"a\"}}", contentType);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);
        Assert.Equal(HttpStatusCode.OK, (await Post(server, "/v1/citations", $"{{\"question\": \"q\", \"passages\": {Passages}, \"answer\": \"a\"}}", "application/json; charset=utf-8")).Status);
    }

    [Theory]
    [InlineData("[{\"role\": \"user\", \"content\": 5}]", "messages[0].content must be a string or a list of content parts, got a number")]
    [InlineData("[{\"role\": \"user\", \"content\": [5]}]", "messages[0].content[0] must be a content part object")]
    [InlineData("[{\"role\": \"user\", \"content\": [{\"type\": 5, \"text\": \"q\"}]}]", "messages[0].content[0].type must be a string")]
    [InlineData("[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": 5}]}]", "messages[0].content[0].text must be a string")]
    [InlineData("[{\"role\": \"user\", \"content\": [{\"type\": \"text\"}]}]", "messages[0].content[0].text must be a string")]
    public async Task ChatContent_OfTheWrongShape_Gets400NamingIt(string messages, string expected)
    {
        await using var server = await RunningServer.StartAsync();
        var (status, body) = await Post(server, "/v1/chat/completions", $"{{\"messages\": {messages}}}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(expected, JsonNode.Parse(body)!["detail"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("[5, \"x\"]", "stop[0] must be a string, got a number")]
    [InlineData("5", "'stop' must be a string or a list of strings, got a number")]
    [InlineData("{}", "'stop' must be a string or a list of strings, got an object")]
    public async Task Stop_OfTheWrongShape_Gets400(string stop, string expected)
    {
        await using var server = await RunningServer.StartAsync();
        var (status, body) = await Post(server, "/v1/chat/completions", $"{{\"messages\": [{{\"role\": \"user\", \"content\": \"q\"}}], \"stop\": {stop}}}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(expected, JsonNode.Parse(body)!["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task InvalidUtf8_InsideChatContent_Gets400()
    {
        await using var server = await RunningServer.StartAsync();
        foreach (var messages in new[] { "[{\"role\": \"user\", \"content\": \"q\xFF\"}]", "[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"q\xFF\"}]}]" })
        {
            var bytes = Encoding.Latin1.GetBytes($"{{\"messages\": {messages}}}");
            var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = new("application/json");
            var response = await server.Http.PostAsync("/v1/chat/completions", content, Token);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
    }

    [Fact]
    public async Task InvalidUtf8InTheAnswer_AndABodyThatIsNoObject_AreNamedAsSuch()
    {
        await using var server = await RunningServer.StartAsync();
        var content = new ByteArrayContent(Encoding.Latin1.GetBytes($"{{\"question\": \"q\", \"passages\": {Passages}, \"answer\": \"a\xFF\"}}"));
        content.Headers.ContentType = new("application/json");
        var response = await server.Http.PostAsync("/v1/citations", content, Token);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("'answer' is not valid UTF-8.", JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!["detail"]!.GetValue<string>());

        foreach (var body in new[] { "[1, 2]", "\"text\"", "42" })
        {
            var (status, text) = await Post(server, "/v1/citations", body);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("The body must be a JSON object.", JsonNode.Parse(text)!["detail"]!.GetValue<string>());
        }
    }

    [Theory]
    [InlineData("\"temperature\": 1e-300")]
    [InlineData("\"temperature\": 5e-324")]
    [InlineData("\"temperature\": 1, \"top_p\": 1e-46")]
    [InlineData("\"temperature\": 1, \"top_p\": 5e-324")]
    public async Task TinyTemperaturesAndTopPs_SampleTheMostLikelyToken_NotAServerError(string sampling)
    {
        await using var server = await RunningServer.StartAsync();
        var greedy = JsonNode.Parse((await Post(server, "/v1/chat/completions", $"{{\"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}], \"max_tokens\": 8}}")).Body)!;
        var (status, body) = await Post(server, "/v1/chat/completions", $"{{\"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}], \"max_tokens\": 8, {sampling}}}");
        Assert.True(status == HttpStatusCode.OK, body);
        Assert.Equal(greedy["choices"]![0]!["message"]!["content"]!.GetValue<string>(), JsonNode.Parse(body)!["choices"]![0]!["message"]!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task AChunkSizeThatOverflows_Gets400()
    {
        await using var server = await RunningServer.StartAsync();
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(server.Address.Host, server.Address.Port, Token);
        var stream = client.GetStream();
        var request = "POST /v1/citations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), Token);
        var buffer = new byte[4096];
        int read = await stream.ReadAsync(buffer, Token);
        Assert.StartsWith("HTTP/1.1 400", Encoding.ASCII.GetString(buffer, 0, read));
    }

    [Fact]
    public async Task AStreamedPromptLongerThanTheContext_Gets400_NotAStreamThatStops()
    {
        await using var server = await RunningServer.StartAsync();
        var question = string.Join(" ", Enumerable.Repeat("Where was Lousdrur Rourti born?", 200));
        foreach (var stream in new[] { false, true })
        {
            var (status, body) = await Post(server, "/v1/chat/completions",
                System.Text.Json.JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = question } }, passages = RunningServer.Passages, stream }));
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Contains("context", JsonNode.Parse(body)!["detail"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task PassagesInToolMessages_CountAgainstMaxPassages_OnBothKindsOfChat()
    {
        await using var server = await RunningServer.StartAsync();
        var retrieved = new JsonArray(Enumerable.Range(1, 25).Select(i => (JsonNode)new JsonObject { ["title"] = $"Note {i}", ["text"] = $"Note {i} says nothing of use." }).ToArray());
        foreach (var stream in new[] { false, true })
        {
            var body = new JsonObject
            {
                ["messages"] = new JsonArray(
                    new JsonObject { ["role"] = "user", ["content"] = "What do the notes say?" },
                    new JsonObject { ["role"] = "tool", ["tool_call_id"] = "call-1", ["content"] = retrieved.ToJsonString() }),
                ["stream"] = stream,
                ["max_tokens"] = 4,
            };
            var (status, text) = await Post(server, "/v1/chat/completions", body.ToJsonString());
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Contains("25 passages (in 'passages' and tool messages); at most 20 are accepted (Server:MaxPassages)", JsonNode.Parse(text)!["detail"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task ARaisedMaxPassages_IsTheCitationLimitToo_NotTwentySilently()
    {
        await using var server = await RunningServer.StartAsync("--Server:MaxPassages=30");
        var passages = new JsonArray(Enumerable.Range(1, 22).Select(i => (JsonNode)new JsonObject { ["id"] = $"note-{i}", ["title"] = $"Note {i}", ["text"] = $"Note {i}." })
            .Concat(RunningServer.Passages.Select(p => JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(p))!)).ToArray());
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = RunningServer.Question }),
            ["passages"] = passages,
        };
        var (status, text) = await Post(server, "/v1/chat/completions", body.ToJsonString());
        Assert.True(status == HttpStatusCode.OK, text);
        // The supporting passages are 23rd to 27th: they are cited, not cut at twenty.
        var response = JsonNode.Parse(text)!;
        Assert.Equal("cited", response["mirage"]!["status"]!.GetValue<string>());
        Assert.Contains(response["choices"]![0]!["message"]!["annotations"]!.AsArray(), a => !a!.ToJsonString().Contains("note-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task IncludeUsage_SendsAUsageChunk_BeforeDone()
    {
        await using var server = await RunningServer.StartAsync();
        var (status, body) = await Post(server, "/v1/chat/completions", System.Text.Json.JsonSerializer.Serialize(new
        {
            messages = new[] { new { role = "user", content = RunningServer.Question } },
            passages = RunningServer.Passages,
            stream = true,
            stream_options = new { include_usage = true },
        }));
        Assert.Equal(HttpStatusCode.OK, status);
        var events = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e["data: ".Length..]).ToList();
        Assert.Equal("[DONE]", events[^1]);
        var usage = JsonNode.Parse(events[^2])!;
        Assert.Empty(usage["choices"]!.AsArray());
        int prompt = usage["usage"]!["prompt_tokens"]!.GetValue<int>(), completion = usage["usage"]!["completion_tokens"]!.GetValue<int>();
        Assert.True(prompt > 0 && completion > 0);
        Assert.Equal(prompt + completion, usage["usage"]!["total_tokens"]!.GetValue<int>());
        Assert.All(events.Take(events.Count - 2), e => Assert.Null(JsonNode.Parse(e)!["usage"]));
    }

    [Theory]
    [InlineData("GET", "/nowhere", HttpStatusCode.NotFound)]
    [InlineData("GET", "/v1/citations", HttpStatusCode.MethodNotAllowed)]
    [InlineData("DELETE", "/", HttpStatusCode.MethodNotAllowed)]
    public async Task NotFoundAndWrongMethod_GetAProblemBody(string method, string path, HttpStatusCode expected)
    {
        await using var server = await RunningServer.StartAsync();
        var response = await server.Http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path), Token);
        Assert.Equal(expected, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal((int)expected, JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!["status"]!.GetValue<int>());
    }

    [Fact]
    public async Task AnUntitledPassage_IsTitledByItsId_OnBothEndpoints()
    {
        await using var server = await RunningServer.StartAsync();
        var passages = RunningServer.Passages.Select(p => JsonNode.Parse(p.ToString()!)!.AsObject()).Select(p => new { id = p["id"]?.ToString() ?? "x", text = p["text"]!.GetValue<string>() }).ToArray();
        var cited = JsonNode.Parse(await (await server.PostAsync("/v1/citations", new { question = RunningServer.Question, passages, answer = RunningServer.Answer })).Content.ReadAsStringAsync(Token))!;
        var chat = JsonNode.Parse(await (await server.PostAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = RunningServer.Question } }, passages })).Content.ReadAsStringAsync(Token))!;
        var annotations = cited["annotations"]!.AsArray().Concat(chat["choices"]![0]!["message"]!["annotations"]!.AsArray().Select(a => a!["url_citation"])).ToList();
        Assert.NotEmpty(annotations);
        Assert.All(annotations, a => Assert.Equal(a!["passage_id"]!.GetValue<string>(), a["title"]!.GetValue<string>()));
    }

    [Fact]
    public async Task AChatWithoutPassages_SaysSoInHttpTerms()
    {
        await using var server = await RunningServer.StartAsync();
        var chat = JsonNode.Parse(await (await server.PostAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = "Hello" } } })).Content.ReadAsStringAsync(Token))!;
        var reason = chat["mirage"]!["reason"]!.GetValue<string>();
        Assert.Contains("'passages'", reason);
        Assert.DoesNotContain("MirageCitationOptions", reason);
    }

    [Theory]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": 5, \"content\": \"q\"}]}", "'messages[0].role' must be a string.")]
    [InlineData("/v1/chat/completions", "{\"messages\": \"x\"}", "'messages' must be a list.")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}], \"max_tokens\": \"5\"}", "'max_tokens' must be an integer.")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}], \"stream\": 1}", "'stream' must be true or false.")]
    [InlineData("/v1/citations", "{\"question\": \"q\", \"passages\": [{\"text\": 5}], \"answer\": \"a\"}", "'passages[0].text' must be a string.")]
    [InlineData("/v1/citations", "{\"question\": \"q\", \"passages\": [{\"text\": \"p\"}], \"answer\": \"a\", \"options\": []}", "'options' must be an object.")]
    [InlineData("/v1/citations", "{\"question\": \"q\", \"passages\": [{\"text\": \"p\"}]}", "Required field missing: 'answer'.")]
    [InlineData("/v1/citations", "{\"question\": \"q\", \"passages\": [{\"title\": \"t\"}], \"answer\": \"a\"}", "Required field missing: 'passages[0].text'.")]
    [InlineData("/v1/citations", "{\"question\": \"q\", \"passages\": [{\"text\": \"p\"}], \"answer\": \"a\", \"options\": {\"best\": 1}}", "'options.best' is not a field of this request; the fields there are: filter, top_percent, top_k, at_most_citations, cti_std, no_context, method, scored_tokens, verify, evidence.")]
    public async Task MistypedFields_AreNamedWithWhatTheyMustBe_NeverWithADotNetType(string path, string body, string expected)
    {
        await using var server = await RunningServer.StartAsync();
        var (status, text) = await Post(server, path, body);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        var detail = JsonNode.Parse(text)!["detail"]!.GetValue<string>();
        Assert.Equal(expected, detail);
        Assert.DoesNotContain("System.", detail);
        Assert.DoesNotContain("Mirage.", detail);
    }

    [Fact]
    public async Task AConversationFarTooLongForTheContext_Gets400_FromItsLengthAlone()
    {
        await using var server = await RunningServer.StartAsync();
        var (status, body) = await Post(server, "/v1/chat/completions",
            System.Text.Json.JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = new string('x', 600_000) } } }));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("The conversation is at least", JsonNode.Parse(body)!["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task AClientLeavingMidStream_IsNoServerError()
    {
        var logs = new LogSink();
        await using var server = await RunningServer.StartAsync(builder => builder.Logging.AddProvider(logs));
        // Without passages nothing stops the reader at a line's end, and sampled it writes for a while.
        var body = System.Text.Json.JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = RunningServer.Question } }, stream = true, max_tokens = 400, temperature = 1, seed = 3 });
        for (int i = 0; i < 3; i++)
        {
            // A raw connection, closed with the stream half read: the server notices while writing.
            using (var client = new System.Net.Sockets.TcpClient())
            {
                await client.ConnectAsync(server.Address.Host, server.Address.Port, Token);
                var stream = client.GetStream();
                await stream.WriteAsync(Encoding.UTF8.GetBytes($"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}"), Token);
                await stream.ReadExactlyAsync(new byte[200], Token);
            }
            // Finished once the request's log line is written.
            for (int wait = 0; wait < 200 && logs.Entries.Count(e => e.Category.EndsWith("RequestLogging", StringComparison.Ordinal) && e.Message.StartsWith("POST /v1/chat", StringComparison.Ordinal)) <= i; wait++)
                await Task.Delay(50, Token);
        }
        // The server still answers, and logged no error for the departed clients.
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("/v1/citations", new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer })).StatusCode);
        Assert.Empty(logs.Entries.Where(e => e.Level >= LogLevel.Error).Select(e => $"{e.Category}: {e.Message}"));
    }
}
