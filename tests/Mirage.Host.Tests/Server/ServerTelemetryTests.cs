using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Mirage.Host.Tests.Server;

/// <summary>
/// The service's telemetry read back through the OpenTelemetry SDK (in-memory exporters), and work
/// cancellation seen in it. Spans are picked out by the trace each test starts, since other tests'
/// servers in this process emit spans from the same sources.
/// </summary>
public sealed class ServerTelemetryTests
{
    private static readonly CancellationToken Token = TestContext.Current.CancellationToken;

    private static object Body(string answer) => new { question = RunningServer.Question, passages = RunningServer.Passages, answer };

    private static Task<RunningServer> StartAsync(List<Activity> spans, List<MetricSnapshot> metrics, params string[] settings) =>
        RunningServer.StartAsync(builder => builder.Services
            .ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(spans))
            .ConfigureOpenTelemetryMeterProvider(meters => meters.AddInMemoryExporter(metrics)), settings);

    [Fact]
    public async Task CitationAndChatRequests_AreTracedUnderTheirHttpSpans_WithGenAiAttributes_AndCountedInMetrics()
    {
        var spans = new List<Activity>();
        var metrics = new List<MetricSnapshot>();
        var server = await StartAsync(spans, metrics);
        var trace = ActivityTraceId.CreateRandom();
        var response = await server.PostTracedAsync(Body(RunningServer.Answer), trace, Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var chatTrace = ActivityTraceId.CreateRandom();
        var chat = await server.PostTracedAsync(new { messages = new[] { new { role = "user", content = RunningServer.Question } }, passages = RunningServer.Passages }, chatTrace, Token, "/v1/chat/completions");
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        await server.DisposeAsync(); // flushes both providers

        var traced = spans.Where(s => s.TraceId == trace).ToList();
        var http = Assert.Single(traced, s => s.Kind == ActivityKind.Server);
        Assert.Equal("POST /v1/citations", http.DisplayName);
        var work = Assert.Single(traced, s => s.OperationName == "mirage.work");
        var cite = Assert.Single(traced, s => s.OperationName == "cite reader");
        Assert.Equal(http.SpanId, work.ParentSpanId);
        Assert.Equal(work.SpanId, cite.ParentSpanId);
        Assert.Equal("cite", cite.GetTagItem("gen_ai.operation.name"));
        Assert.Equal("reader", cite.GetTagItem("gen_ai.request.model"));
        Assert.True((int)cite.GetTagItem("mirage.tokens.attributed")! > 10);
        Assert.True((int)cite.GetTagItem("mirage.passes.forward")! >= 2);
        Assert.IsType<double>(work.GetTagItem("mirage.queue.wait"));

        var generation = Assert.Single(spans, s => s.TraceId == chatTrace && s.OperationName == "chat reader");
        Assert.Equal("chat", generation.GetTagItem("gen_ai.operation.name"));
        Assert.True((int)generation.GetTagItem("gen_ai.usage.input_tokens")! > 50);
        Assert.True((int)generation.GetTagItem("gen_ai.usage.output_tokens")! > 3);
        Assert.Equal(["stop"], (string[])generation.GetTagItem("gen_ai.response.finish_reasons")!);
        Assert.True((int)generation.GetTagItem("mirage.tokens.attributed")! > 3);
        var names = metrics.Select(m => m.Name).ToHashSet();
        foreach (var name in new[] { "mirage.queue.wait", "mirage.queue.depth", "mirage.tokens.attributed", "mirage.passes", "http.server.request.duration" })
            Assert.Contains(name, names);
        // Request duration by route and status: ASP.NET Core's histogram.
        var durations = metrics.Where(m => m.Name == "http.server.request.duration").SelectMany(m => m.MetricPoints).ToList();
        Assert.Contains(durations, p => Tag(p, "http.route") is "/v1/citations" && Tag(p, "http.response.status_code") is 200);
    }

    private static object? Tag(MetricPoint point, string key)
    {
        foreach (var tag in point.Tags)
            if (tag.Key == key)
                return tag.Value;
        return null;
    }

    [Fact]
    public async Task WorkStillRunningWhenShutdownRunsOutOfTime_IsCancelledAndAnswered503()
    {
        var server = await RunningServer.StartAsync("--Server:ShutdownTimeoutSeconds=0");
        var trace = ActivityTraceId.CreateRandom();
        using var started = RunningServer.WhenCiteStarts(trace);
        // The test holds the model, so the work is still running when the stop runs out of time, on any machine.
        var model = server.Model;
        await model.ComputeGate.WaitAsync(Token);
        var request = server.PostTracedAsync(new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer }, trace, Token);
        await started.Started.WaitAsync(TimeSpan.FromSeconds(60), Token);
        var stopping = server.App.StopAsync(Token);
        var response = await request;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("stopped", JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!["detail"]!.GetValue<string>());
        await stopping;
        model.ComputeGate.Release();
        await server.DisposeAsync();
    }

    [Fact]
    public async Task WaitingCitationRequests_ShareABatch_EachGettingWhatItGetsAlone_AndABadOneFailsAlone()
    {
        var spans = new List<Activity>();
        var server = await StartAsync(spans, [], "--Server:BatchSize=4", "--Server:Concurrency=1");
        string[] answers =
        [
            RunningServer.Answer, "Lousdrur Rourti was born in Grouscelford.", "Lousdrur Rourti works for Cimgun Labs.",
            "Caszais Rourti works for Dreinkai Systems.", "Brensein Rourti was born in Horvairton. I hope this helps.", "Lousdrur Rourti is well known in the region.",
        ];
        var alone = new List<JsonNode>();
        foreach (var answer in answers)
            alone.Add(JsonNode.Parse(await (await server.PostAsync("/v1/citations", Body(answer))).Content.ReadAsStringAsync(Token))!);

        // All at once, with one answer too long for the model's context among them.
        var tooLong = string.Join(" ", Enumerable.Repeat(RunningServer.Answer, 80));
        var traces = answers.Append(tooLong).Select(_ => ActivityTraceId.CreateRandom()).ToList();
        var responses = await Task.WhenAll(answers.Append(tooLong).Select((answer, i) => server.PostTracedAsync(Body(answer), traces[i], Token)));
        Assert.Equal(HttpStatusCode.BadRequest, responses[^1].StatusCode);
        for (int i = 0; i < answers.Length; i++)
        {
            Assert.Equal(HttpStatusCode.OK, responses[i].StatusCode);
            var together = JsonNode.Parse(await responses[i].Content.ReadAsStringAsync(Token))!;
            Assert.Equal(answers[i], together["answer"]!.GetValue<string>());
            Assert.Equal(Citations(alone[i]), Citations(together));
            Assert.Equal(Cti(alone[i]), Cti(together), (a, b) => Math.Abs(a - b) < 1e-3);
        }
        await server.DisposeAsync();

        var batches = spans.Where(s => s.OperationName == "mirage.work" && traces.Contains(s.TraceId) && (int)s.GetTagItem("mirage.batch.size")! > 1).ToList();
        Assert.NotEmpty(batches);
        // A batch's span sits in its first request's trace and links the others.
        Assert.All(batches, b => Assert.Equal((int)b.GetTagItem("mirage.batch.size")! - 1, b.Links.Count(l => traces.Contains(l.Context.TraceId))));
    }

    private static string Citations(JsonNode result) =>
        string.Join("|", result["sentences"]!.AsArray().Select(s => string.Join(",", s!["citations"]!.AsArray().Select(c => c!["passage_id"]!.GetValue<string>()))));

    private static IEnumerable<double> Cti(JsonNode result) => result["tokens"]!.AsArray().Select(t => t!["cti"]!.GetValue<double>());

    [Fact]
    public async Task AClientThatDisconnects_HasItsWorkCancelled()
    {
        var spans = new List<Activity>();
        var metrics = new List<MetricSnapshot>();
        var server = await StartAsync(spans, metrics);
        // The test holds the model, so the work is still waiting for it when the client leaves, on any machine.
        var model = server.Model;
        await model.ComputeGate.WaitAsync(Token);
        var trace = ActivityTraceId.CreateRandom();
        using var leave = CancellationTokenSource.CreateLinkedTokenSource(Token);
        using var started = RunningServer.WhenCiteStarts(trace);
        var request = server.PostTracedAsync(new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer }, trace, leave.Token);
        // Leave once a worker has it.
        await started.Started.WaitAsync(TimeSpan.FromSeconds(60), Token);
        await leave.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        model.ComputeGate.Release();

        // The worker is free again; the cancelled work left a span marked so, and never finished attributing.
        var next = await server.PostAsync("/v1/citations", Body(RunningServer.Answer));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        await server.DisposeAsync();
        var work = Assert.Single(spans, s => s.TraceId == trace && s.OperationName == "mirage.work");
        Assert.Equal(ActivityStatusCode.Error, work.Status);
        Assert.Equal("cancelled", work.StatusDescription);
        Assert.DoesNotContain(spans, s => s.TraceId == trace && s.GetTagItem("mirage.tokens.attributed") is not null);
        Assert.Contains(metrics, m => m.Name == "mirage.work.cancelled");
    }
}
