using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;

namespace Mirage.Host.Tests.Server;

public sealed class ServerTests
{
    private static readonly CancellationToken Token = TestContext.Current.CancellationToken;

    private static object CitationBody(string answer) => new { question = RunningServer.Question, passages = RunningServer.Passages, answer };

    private static async Task<JsonObject> Json(HttpResponseMessage response) => JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!.AsObject();

    [Fact]
    public async Task Citations_ReturnsTheEngineResult_WithUrlCitationAnnotations()
    {
        await using var server = await RunningServer.StartAsync();
        var response = await server.PostAsync("/v1/citations", CitationBody(RunningServer.Answer));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await Json(response);
        Assert.Equal(RunningServer.Answer, json["answer"]!.GetValue<string>());
        Assert.Equal(2, json["sentences"]!.AsArray().Count);
        Assert.NotEmpty(json["tokens"]!.AsArray());
        foreach (var annotation in json["annotations"]!.AsArray())
        {
            Assert.Equal("url_citation", annotation!["type"]!.GetValue<string>());
            int start = annotation["start_index"]!.GetValue<int>(), end = annotation["end_index"]!.GetValue<int>();
            Assert.Contains(RunningServer.Answer[start..end], new[] { "Lousdrur Rourti works for Cimgun Labs.", "Lousdrur Rourti was born in Grouscelford." });
            Assert.StartsWith("urn:mirage:passage:", annotation["url"]!.GetValue<string>());
        }

        var html = await server.PostAsync("/v1/citations?format=html", CitationBody(RunningServer.Answer));
        Assert.Equal("text/html", html.Content.Headers.ContentType!.MediaType);
        Assert.Contains("Lousdrur Rourti", await html.Content.ReadAsStringAsync(Token));

        var models = await server.Http.GetFromJsonAsync<JsonObject>("/v1/models", Token);
        Assert.Equal("reader", models!["data"]![0]!["id"]!.GetValue<string>());
        Assert.Equal("Healthy", await server.Http.GetStringAsync("/alive", Token));
        Assert.Contains("<form", await server.Http.GetStringAsync("/", Token));
    }

    [Fact]
    public async Task Citations_TakeTheMethodAndVerification_FromTheOptions()
    {
        await using var server = await RunningServer.StartAsync();
        var ablation = await Json(await server.PostAsync("/v1/citations", CitationBody(RunningServer.Answer)));
        Assert.Equal("Ablation", ablation["options"]!["method"]!.GetValue<string>());
        Assert.Equal(2, ablation["ablation"]!.AsArray().Count);
        Assert.All(ablation["sentences"]!.AsArray(), s => Assert.Null(s!["support"]));

        var grounded = await Json(await server.PostAsync("/v1/citations", new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer, options = new { evidence = true } }));
        var cited = grounded["sentences"]!.AsArray().SelectMany(s => s!["citations"]!.AsArray()).ToList();
        Assert.NotEmpty(cited);
        Assert.All(cited, c => Assert.NotEmpty(c!["evidence"]!.AsArray()));

        var body = new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer, options = new { method = "saliency", verify = true, scored_tokens = "selected" } };
        var saliency = await Json(await server.PostAsync("/v1/citations", body));
        Assert.Equal("Cci", saliency["options"]!["method"]!.GetValue<string>());
        Assert.Equal("saliency", saliency["options"]!["pecore"]!["cci_method"]!.GetValue<string>());
        Assert.Equal("Selected", saliency["options"]!["ablation"]!["tokens"]!.GetValue<string>());
        Assert.NotEmpty(saliency["cues"]!.AsArray());
        foreach (var sentence in saliency["sentences"]!.AsArray())
        {
            bool cites = sentence!["citations"]!.AsArray().Count > 0;
            Assert.Equal(cites, sentence["support"] is not null);
            if (cites)
                Assert.IsType<bool>(sentence["support"]!["verified"]!.GetValue<bool>());
        }
    }

    [Theory]
    [InlineData("{\"question\": \"q\", \"passages\": [{\"text\": \"p\"}], \"answer\": \"a\", \"options\": {\"method\": \"lime\"}}", "Unknown method 'lime'")]
    [InlineData("{\"question\": \"q\", \"passages\": [{\"text\": \"p\"}], \"answer\": \"a\", \"options\": {\"scored_tokens\": \"some\"}}", "scored_tokens")]
    [InlineData("{\"question\": \"q\", \"passages\": [{\"text\": \"p\"}], \"answer\": \"a\", \"options\": {\"verify\": \"yes\"}}", "options.verify")]
    [InlineData("{\"question\": \"q\", \"passages\": [{\"text\": \"p\"}], \"answer\": \"a\", \"temperature\": 1}", "temperature")]
    [InlineData("{\"question\": \"q\", \"passages\": [{\"text\": \"p\"}]}", "answer")]
    [InlineData("{\"question\": \"q\", \"passages\": \"p\", \"answer\": \"a\"}", "passages")]
    [InlineData("{\"question\": \"q\", \"passages\": [{\"text\": \"p\"}], \"answer\": ", "")]
    [InlineData("{\"question\": \"q\", \"passages\": [], \"answer\": \"a\"}", "at least one passage")]
    [InlineData("{\"question\": \"q\", \"passages\": [{\"text\": \" \"}], \"answer\": \"a\"}", "passages[0].text")]
    [InlineData("{\"question\": \"q\", \"passages\": [{\"text\": \"p\"}], \"answer\": \" \"}", "answer")]
    [InlineData("{\"question\": \"q\", \"passages\": [{\"text\": \"p\"}], \"answer\": \"a\", \"options\": {\"filter\": \"best\"}}", "filter")]
    public async Task BadRequests_Get400_WithAProblemSayingWhatIsWrong(string body, string mentioned)
    {
        await using var server = await RunningServer.StartAsync();
        var response = await server.Http.PostAsync("/v1/citations", new StringContent(body, Encoding.UTF8, "application/json"), Token);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        Assert.Contains(mentioned, (await Json(response))["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task InvalidUtf8_WrongContentType_AndOversizedBodies_AreRefused()
    {
        await using var server = await RunningServer.StartAsync("--Server:MaxRequestBodyBytes=2048");
        var bytes = Encoding.UTF8.GetBytes("{\"question\": \"q\", \"passages\": [{\"text\": \"p\"}], \"answer\": \"a\"}");
        bytes[bytes.Length - 3] = 0xFF;
        var invalid = new ByteArrayContent(bytes);
        invalid.Headers.ContentType = new("application/json");
        Assert.Equal(HttpStatusCode.BadRequest, (await server.Http.PostAsync("/v1/citations", invalid, Token)).StatusCode);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await server.Http.PostAsync("/v1/citations", new StringContent("x"), Token)).StatusCode);
        var huge = await server.PostAsync("/v1/citations", CitationBody(new string('x', 4096)));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, huge.StatusCode);
    }

    [Fact]
    public async Task ApiKeys_AreRequiredWhenConfigured()
    {
        await using var server = await RunningServer.StartAsync("--Server:ApiKeys:0=secret-1");
        var without = await server.PostAsync("/v1/citations", CitationBody(RunningServer.Answer));
        Assert.Equal(HttpStatusCode.Unauthorized, without.StatusCode);
        Assert.Equal("Bearer", without.Headers.WwwAuthenticate.Single().Scheme);
        Assert.Equal(HttpStatusCode.Unauthorized, (await server.PostAsync("/v1/citations", CitationBody(RunningServer.Answer), "secret-2")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("/v1/citations", CitationBody(RunningServer.Answer), "secret-1")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/health", Token)).StatusCode);
    }

    [Fact]
    public async Task AFullQueue_Answers429WithRetryAfter_AndEveryAcceptedRequestGetsItsOwnAnswer()
    {
        await using var server = await RunningServer.StartAsync("--Server:MaxQueueLength=1", "--Server:Concurrency=1", "--Server:RetryAfterSeconds=3");
        var answers = Enumerable.Range(0, 12).Select(i => i % 2 == 0 ? RunningServer.Answer : "Lousdrur Rourti was born in Grouscelford.").ToList();
        var responses = await Task.WhenAll(answers.Select(a => server.PostAsync("/v1/citations", CitationBody(a))));
        var rejected = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(rejected);
        Assert.All(rejected, r => Assert.Equal(TimeSpan.FromSeconds(3), r.Headers.RetryAfter!.Delta));
        for (int i = 0; i < responses.Length; i++)
        {
            if (responses[i].StatusCode == HttpStatusCode.OK)
                Assert.Equal(answers[i], (await Json(responses[i]))["answer"]!.GetValue<string>());
        }
        Assert.Contains(responses, r => r.StatusCode == HttpStatusCode.OK);
    }

    [Fact]
    public async Task ARequestOverItsTimeLimit_Gets504()
    {
        await using var server = await RunningServer.StartAsync("--Server:RequestTimeoutSeconds=0.001");
        var essay = string.Join(" ", Enumerable.Repeat(RunningServer.Answer, 12));
        var response = await server.PostAsync("/v1/citations", CitationBody(essay));
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains("RequestTimeoutSeconds", (await Json(response))["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task Shutdown_LetsInFlightWorkFinish_AndThenRefusesNewWork()
    {
        var server = await RunningServer.StartAsync("--Server:ShutdownTimeoutSeconds=30");
        // The test holds the model, so the request is in flight (a worker has it) when the stop begins.
        var model = server.Model;
        await model.ComputeGate.WaitAsync(Token);
        var trace = System.Diagnostics.ActivityTraceId.CreateRandom();
        using var started = RunningServer.WhenCiteStarts(trace);
        var inFlight = server.PostTracedAsync(CitationBody(RunningServer.Answer), trace, Token);
        await started.Started.WaitAsync(TimeSpan.FromSeconds(60), Token);
        var queue = server.App.Services.GetService(typeof(Mirage.Host.Server.WorkQueue)) as Mirage.Host.Server.WorkQueue;
        var stopping = server.App.StopAsync(Token);
        model.ComputeGate.Release();
        await stopping;
        Assert.Equal(HttpStatusCode.OK, (await inFlight).StatusCode);
        Assert.Null(queue!.TryEnqueue(_ => Task.FromResult(0), Token));
        await server.DisposeAsync();
    }

    [Fact]
    public async Task OpenAiClient_GetsACompletionWithAnnotations_StreamingAndNot()
    {
        await using var server = await RunningServer.StartAsync();
        var client = new ChatClient("reader", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.Address, "/v1") });
        // Retrieval ran as a tool call; its result (the passages) is in the conversation.
        List<OpenAI.Chat.ChatMessage> messages =
        [
            new UserChatMessage(RunningServer.Question),
            new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall("call-1", "search_documents", BinaryData.FromString("{}"))]),
            new ToolChatMessage("call-1", System.Text.Json.JsonSerializer.Serialize(RunningServer.Passages)),
        ];
        ChatCompletion completion = await client.CompleteChatAsync(messages, cancellationToken: Token);
        var text = completion.Content[0].Text;
        Assert.False(string.IsNullOrWhiteSpace(text));
        Assert.NotEmpty(completion.Annotations);
        Assert.All(completion.Annotations, a => Assert.InRange(a.EndIndex, a.StartIndex + 1, text.Length));

        var streamed = new StringBuilder();
        await foreach (var update in client.CompleteChatStreamingAsync(messages, cancellationToken: Token))
        {
            foreach (var part in update.ContentUpdate)
                streamed.Append(part.Text);
        }
        Assert.Equal(text, streamed.ToString().Trim());
    }

    [Fact]
    public async Task StreamedAndNonStreamedChat_SendTheSameText_WithIdenticalAnnotations()
    {
        await using var server = await RunningServer.StartAsync();
        var messages = new[] { new { role = "user", content = RunningServer.Question } };
        var whole = await Json(await server.PostAsync("/v1/chat/completions", new { messages, passages = RunningServer.Passages }));
        var message = whole["choices"]![0]!["message"]!;

        var streamed = await server.PostAsync("/v1/chat/completions", new { messages, passages = RunningServer.Passages, stream = true });
        var chunks = (await streamed.Content.ReadAsStringAsync(Token)).Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => e["data: ".Length..]).Where(e => e != "[DONE]").Select(e => JsonNode.Parse(e)!["choices"]![0]!["delta"]!).ToList();
        var text = string.Concat(chunks.Select(d => d["content"]?.GetValue<string>() ?? ""));
        var annotations = chunks.Single(d => d["annotations"] is not null)["annotations"]!;

        Assert.Equal(message["content"]!.GetValue<string>(), text);
        Assert.False(char.IsWhiteSpace(text[0]));
        Assert.NotEmpty(annotations.AsArray());
        Assert.Equal(message["annotations"]!.ToJsonString(), annotations.ToJsonString());
    }
}
