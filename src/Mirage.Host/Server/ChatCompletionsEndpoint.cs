using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Tokenization;
using Mirage.Core.Integration;

namespace Mirage.Host.Server;

/// <summary>A chat message: text content, or OpenAI's list of content parts; an assistant's tool calls are accepted and not interpreted.</summary>
public sealed record ChatMessageInput(string Role, JsonElement? Content = null, string? Name = null, string? ToolCallId = null, JsonElement? ToolCalls = null, string? Refusal = null)
{
    /// <summary>The message's text (text parts joined); <see cref="Problem"/> must have found nothing wrong.</summary>
    public string Text => Content switch
    {
        { ValueKind: JsonValueKind.String } s => s.GetString()!,
        { ValueKind: JsonValueKind.Array } parts => string.Concat(parts.EnumerateArray()
            .Where(p => p.GetProperty("type").GetString() == "text")
            .Select(p => p.GetProperty("text").GetString())),
        _ => "",
    };

    /// <summary>
    /// What is wrong with the content of message <paramref name="index"/>, or null: it must be a
    /// string, null, or a list of content-part objects with a string <c>type</c>, and a text part
    /// needs a string <c>text</c>; strings must be valid UTF-8.
    /// </summary>
    public string? Problem(int index)
    {
        var where = $"messages[{index}].content";
        switch (Content)
        {
            case null or { ValueKind: JsonValueKind.Null }:
                return null;
            case { ValueKind: JsonValueKind.String } text:
                return ApiRequests.StringProblem(text, where);
            case { ValueKind: JsonValueKind.Array } parts:
                int i = 0;
                foreach (var part in parts.EnumerateArray())
                {
                    var at = $"{where}[{i++}]";
                    if (part.ValueKind != JsonValueKind.Object)
                        return $"{at} must be a content part object such as {{\"type\": \"text\", \"text\": \"...\"}}, got {ApiRequests.Describe(part)}.";
                    if (!part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                        return $"{at}.type must be a string such as \"text\".";
                    if (ApiRequests.StringProblem(type, $"{at}.type") is { } badType)
                        return badType;
                    if (type.GetString() != "text")
                        continue;
                    if (!part.TryGetProperty("text", out var body) || body.ValueKind != JsonValueKind.String)
                        return $"{at}.text must be a string.";
                    if (ApiRequests.StringProblem(body, $"{at}.text") is { } badText)
                        return badText;
                }
                return null;
            default:
                return $"{where} must be a string or a list of content parts, got {ApiRequests.Describe(Content.Value)}.";
        }
    }
}

/// <summary>
/// Body of <c>POST /v1/chat/completions</c>: OpenAI's fields Mirage supports, plus <c>passages</c>
/// (what to answer from and cite) and <c>citations</c> (citation settings).
/// </summary>
public sealed record ChatCompletionRequest(
    IReadOnlyList<ChatMessageInput> Messages,
    string? Model = null,
    int? MaxTokens = null,
    int? MaxCompletionTokens = null,
    double? Temperature = null,
    double? TopP = null,
    JsonElement? Stop = null,
    bool Stream = false,
    JsonElement? StreamOptions = null,
    long? Seed = null,
    int? N = null,
    string? User = null,
    IReadOnlyList<PassageInput>? Passages = null,
    CitationSettings? Citations = null);

/// <summary>
/// <c>POST /v1/chat/completions</c>, OpenAI-compatible: generates with the loaded model and cites the
/// answer. With <c>passages</c> (or tool messages holding retrieval results), the model answers
/// from the MIRAGE prompt over them, the same input citations teacher-force; the message carries
/// <c>annotations</c> of type <c>url_citation</c> and a <c>mirage</c> object says what happened.
/// Streaming (SSE) sends the text as it is generated, then one chunk with the annotations.
/// </summary>
internal static class ChatCompletionsEndpoint
{
    /// <summary>A checked request, ready for the model: its prompt ids, generation and citation settings.</summary>
    internal sealed record Job(int[] PromptIds, GenerationOptions Generation, string Question, IReadOnlyList<Passage> Passages, CitationOptions Citations, bool IncludeUsage);

    /// <summary>Carries one server-sent event's data (a chunk's JSON, or <c>[DONE]</c>) to the client: the HTTP response, or NATS on its way to an api.</summary>
    internal delegate Task ChunkSink(string data, CancellationToken cancellationToken);

    public static async Task<IResult> HandleAsync(HttpContext http, ModelHost host, WorkQueue queue, ServerTelemetry telemetry, IOptions<ServerOptions> settings)
    {
        var options = settings.Value;
        var (request, error) = await ApiRequests.ReadAsync<ChatCompletionRequest>(http.Request, http.RequestAborted);
        if (error is not null)
            return error;
        if (Validate(request!, options) is { } invalid)
            return invalid;
        if (host.Current is not { } loaded)
            return ApiRequests.Problem(StatusCodes.Status503ServiceUnavailable, "Model not ready", host.Unavailable);

        // The prompt is built by the worker, under the queue's limits: rendering and tokenizing
        // grow with the request, and a streamed answer must not start before its input is checked.
        if (request!.Stream)
        {
            var stopping = http.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
            var streamed = await Scheduling.RunAsync(http, options, ct => queue.TryEnqueue(async c =>
            {
                StartEventStream(http.Response);
                await StreamAsync(loaded, CreateJob(request, loaded, options, c), telemetry, HttpSink(http.Response), () => stopping.IsCancellationRequested, () => http.RequestAborted.IsCancellationRequested, c);
                return true;
            }, ct));
            return streamed.Error ?? Results.Empty;
        }
        var outcome = await Scheduling.RunAsync(http, options, ct => queue.TryEnqueue(c => CompleteAsync(loaded, CreateJob(request, loaded, options, c), telemetry, c), ct));
        return outcome.Error ?? Results.Content(outcome.Value!.ToJsonString(), "application/json; charset=utf-8");
    }

    /// <summary>What is wrong with a request before any model sees it, as a 400; null when nothing is.</summary>
    internal static IResult? Validate(ChatCompletionRequest request, ServerOptions options)
    {
        int? tokens = request.MaxCompletionTokens ?? request.MaxTokens;
        string? problem =
            request.Messages.Count == 0 ? "'messages' is empty."
            : !request.Messages.Any(m => m.Role == "user") ? "'messages' has no user message to answer."
            : request.Messages.FirstOrDefault(m => m.Role is not ("system" or "developer" or "user" or "assistant" or "tool")) is { } odd ? $"Unknown role '{odd.Role}'."
            : request.Messages.Select((m, i) => m.Problem(i)).FirstOrDefault(p => p is not null) is { } content ? content
            : StopProblem(request.Stop) is { } stop ? stop
            : request.StreamOptions is { ValueKind: not (JsonValueKind.Object or JsonValueKind.Null) } streamOptions ? $"'stream_options' must be an object, got {ApiRequests.Describe(streamOptions)}."
            : request.StreamOptions is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty("include_usage", out var u) && u.ValueKind is not (JsonValueKind.True or JsonValueKind.False) ? "'stream_options.include_usage' must be a boolean."
            : request.N is not (null or 1) ? "'n' must be 1: one answer per request."
            : tokens is < 1 ? "max_tokens must be at least 1."
            : tokens > options.MaxTokens ? $"max_tokens {tokens} is above the limit of {options.MaxTokens} (Server:MaxTokens)."
            : PassageInput.Problem(request.Passages ?? [], options.MaxPassages);
        return problem is null ? null : ApiRequests.Problem(StatusCodes.Status400BadRequest, "Invalid request", problem);
    }

    private static string? StopProblem(JsonElement? stop) => stop switch
    {
        null or { ValueKind: JsonValueKind.Null } => null,
        { ValueKind: JsonValueKind.String } s => ApiRequests.StringProblem(s, "stop"),
        { ValueKind: JsonValueKind.Array } a => a.EnumerateArray().Select((e, i) => e.ValueKind == JsonValueKind.String
                ? ApiRequests.StringProblem(e, $"stop[{i}]")
                : $"stop[{i}] must be a string, got {ApiRequests.Describe(e)}.").FirstOrDefault(p => p is not null),
        { } other => $"'stop' must be a string or a list of strings, got {ApiRequests.Describe(other)}.",
    };

    /// <summary>The prompt and settings for <paramref name="loaded"/>; throws MirageException for input the model cannot take.</summary>
    internal static Job CreateJob(ChatCompletionRequest request, LoadedModel loaded, ServerOptions options, CancellationToken cancellationToken)
    {
        var question = request.Messages.Last(m => m.Role == "user").Text;
        // Retrieval results sent back as tool messages count too; the collector drops repeated text.
        var collector = new PassageCollector();
        collector.Add(PassageInput.ToPassages(request.Passages ?? []));
        foreach (var tool in request.Messages.Where(m => m.Role == "tool"))
            collector.Add(loaded.Citations.Extractor.Extract(tool.Text));
        var passages = collector.Snapshot();
        // Passages from tool messages count against the same limit as those sent in 'passages'.
        if (passages.Count > options.MaxPassages)
            throw new Core.MirageException($"{passages.Count} passages (in 'passages' and tool messages); at most {options.MaxPassages} are accepted (Server:MaxPassages).");
        var citationOptions = (request.Citations ?? new CitationSettings()).ToOptions(options);
        var conversation = request.Messages.Select(m => new ChatMessage(m.Role, m.Text)).ToList();
        // Refused from its length alone when it cannot fit, before tokenizing it (as citation prompts are).
        if (passages.Count == 0 && loaded.Model.Tokenizer.MinimumTokens(conversation.Sum(m => (long)m.Content.Length)) is var fewest && fewest >= loaded.Model.ContextLength)
            throw new Core.ContextLengthExceededException($"The conversation is at least {fewest:N0} tokens, more than {loaded.Model.ModelId}'s {loaded.Model.ContextLength}-token context; shorten the messages.");
        int[] prompt = passages.Count > 0
            ? PreparedCitation.AnswerPrompt(loaded.Model, question, passages, citationOptions.Prompt, cancellationToken)
            : ConversationPrompt.Encode(loaded.Model.Tokenizer, conversation, cancellationToken);
        var stops = request.Stop switch
        {
            { ValueKind: JsonValueKind.String } s => [s.GetString()!],
            { ValueKind: JsonValueKind.Array } a => a.EnumerateArray().Select(e => e.GetString() ?? "").Where(s => s.Length > 0).ToList(),
            _ => new List<string>(),
        };
        var generation = new GenerationOptions
        {
            MaxTokens = request.MaxCompletionTokens ?? request.MaxTokens ?? Math.Min(256, options.MaxTokens),
            Temperature = request.Temperature ?? 0,
            TopP = request.TopP ?? 1,
            Seed = request.Seed,
            // The reader answers in one line; a grounded answer stops at the line's end.
            StopStrings = passages.Count > 0 && stops.Count == 0 ? ["\n"] : stops,
            // A grounded answer is cited after it is written: its generation's pass is citation's first.
            KeepTrace = passages.Count > 0,
        };
        generation.Validate();
        bool includeUsage = request.StreamOptions is { ValueKind: JsonValueKind.Object } streamOptions
            && streamOptions.TryGetProperty("include_usage", out var usage) && usage.ValueKind == JsonValueKind.True;
        return new Job(prompt, generation, question, passages, citationOptions, includeUsage);
    }

    /// <summary>The whole <c>chat.completion</c> body: generated, then cited.</summary>
    internal static async Task<JsonObject> CompleteAsync(LoadedModel loaded, Job job, ServerTelemetry telemetry, CancellationToken cancellationToken)
    {
        using var span = ServerTelemetry.StartOperation("chat", loaded.Model.ModelId);
        GenerationResult generated;
        await loaded.Model.ComputeGate.WaitAsync(cancellationToken);
        try
        {
            generated = loaded.Model.Generate(job.PromptIds, job.Generation, cancellationToken);
        }
        finally
        {
            loaded.Model.ComputeGate.Release();
        }
        span?.SetTag("gen_ai.usage.input_tokens", generated.PromptTokenCount)
            .SetTag("gen_ai.usage.output_tokens", generated.TokenIds.Count)
            .SetTag("gen_ai.response.finish_reasons", new[] { FinishReason(generated.FinishReason) });
        // The text a streamed answer sends too (it skips the same leading whitespace), so both cite alike.
        var answer = generated.Text.TrimStart();
        var citations = await CiteAsync(loaded, job, answer, generated.TokenIds, generated.Trace, telemetry, cancellationToken);
        var message = new JsonObject { ["role"] = "assistant", ["content"] = answer, ["annotations"] = Annotations(citations) };
        return new JsonObject
        {
            ["id"] = $"chatcmpl-{Guid.NewGuid():N}",
            ["object"] = "chat.completion",
            ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["model"] = loaded.Model.ModelId,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = message, ["finish_reason"] = FinishReason(generated.FinishReason) }),
            ["usage"] = new JsonObject
            {
                ["prompt_tokens"] = generated.PromptTokenCount,
                ["completion_tokens"] = generated.TokenIds.Count,
                ["total_tokens"] = generated.PromptTokenCount + generated.TokenIds.Count,
            },
            ["mirage"] = Summary(citations),
        };
    }

    /// <summary>Marks <paramref name="response"/> as a server-sent event stream (before its first byte).</summary>
    internal static void StartEventStream(HttpResponse response)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
    }

    /// <summary>A sink that writes each event to <paramref name="response"/> and flushes it.</summary>
    internal static ChunkSink HttpSink(HttpResponse response) => async (data, cancellationToken) =>
    {
        await response.WriteAsync($"data: {data}\n\n", cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    };

    /// <summary>
    /// Streams the answer as chunks to <paramref name="send"/> as it is generated, then the chunk with
    /// the annotations, the finish, usage when asked, and <c>[DONE]</c>. The prompt is checked before
    /// the first chunk, so until then a failure is thrown (a plain error status); after it, a failure,
    /// the time limit or shutdown (<paramref name="stopping"/>) becomes an <c>error</c> event and
    /// <c>[DONE]</c>, unless the client is gone (<paramref name="clientGone"/>).
    /// </summary>
    internal static async Task StreamAsync(LoadedModel loaded, Job job, ServerTelemetry telemetry, ChunkSink send, Func<bool> stopping, Func<bool> clientGone, CancellationToken cancellationToken)
    {
        using var span = ServerTelemetry.StartOperation("chat", loaded.Model.ModelId);
        var id = $"chatcmpl-{Guid.NewGuid():N}";
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        bool started = false;
        async Task Send(JsonObject delta, string? finish = null)
        {
            var chunk = new JsonObject
            {
                ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = loaded.Model.ModelId,
                ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
            };
            started = true;
            await send(chunk.ToJsonString(), cancellationToken);
        }

        await loaded.Model.ComputeGate.WaitAsync(cancellationToken);
        var text = new StringBuilder();
        var ids = new List<int>();
        var finish = Core.Models.FinishReason.Length;
        GenerationTrace? trace = null;
        try
        {
            // Checks the prompt before the first chunk: until then a failure is still a plain error status.
            var tokens = loaded.Model.GenerateTokens(job.PromptIds, job.Generation, kept => trace = kept, cancellationToken);
            await Send(new JsonObject { ["role"] = "assistant", ["content"] = "" });
            foreach (var token in tokens)
            {
                ids.Add(token.Id);
                finish = token.Finish ?? finish;
                // Leading whitespace is not sent (a non-streamed answer leaves it out as well).
                var delta = text.Length == 0 ? token.TextDelta.TrimStart() : token.TextDelta;
                if (delta.Length == 0)
                    continue;
                text.Append(delta);
                await Send(new JsonObject { ["content"] = delta });
            }
        }
        catch (Exception e) when (started && !clientGone())
        {
            await SendError(e);
            return;
        }
        finally
        {
            loaded.Model.ComputeGate.Release();
        }
        int generated = ids.Count;
        span?.SetTag("gen_ai.usage.input_tokens", job.PromptIds.Length).SetTag("gen_ai.usage.output_tokens", generated);
        try
        {
            // Citations index the streamed text as sent, and cite the ids generated for it.
            var citations = await CiteAsync(loaded, job, text.ToString(), ids, trace, telemetry, cancellationToken);
            await Send(new JsonObject { ["annotations"] = Annotations(citations), ["mirage"] = Summary(citations) });
        }
        catch (Exception e) when (!clientGone())
        {
            await SendError(e);
            return;
        }
        await Send([], FinishReason(finish));
        if (job.IncludeUsage)
        {
            // OpenAI's usage chunk: no choices, the counts of the whole stream.
            var usage = new JsonObject
            {
                ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = loaded.Model.ModelId, ["choices"] = new JsonArray(),
                ["usage"] = new JsonObject { ["prompt_tokens"] = job.PromptIds.Length, ["completion_tokens"] = generated, ["total_tokens"] = job.PromptIds.Length + generated },
            };
            await send(usage.ToJsonString(), cancellationToken);
        }
        await send("[DONE]", cancellationToken);

        // Once the stream has begun its status is sent: a failure, the time limit or shutdown becomes an
        // error event, then [DONE]. The request's token may be what was cancelled, so these last bytes
        // get a few seconds of their own.
        async Task SendError(Exception error)
        {
            var (message, type) = error switch
            {
                OperationCanceledException when stopping() => (ShuttingDown, "server_error"),
                OperationCanceledException => (TimedOut, "timeout"),
                Core.MirageException => (error.Message, "invalid_request_error"),
                _ => ("The server failed while answering; the answer above is incomplete.", "server_error"),
            };
            span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, message);
            using var last = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await send(ErrorEvent(message, type), last.Token);
            await send("[DONE]", last.Token);
        }
    }

    /// <summary>The error event's message when the time limit ends a stream.</summary>
    internal const string TimedOut = "The answer ran past the request time limit (Server:RequestTimeoutSeconds); the answer above is incomplete.";

    /// <summary>The error event's message when shutdown ends a stream.</summary>
    internal const string ShuttingDown = "The server is shutting down; the answer above is incomplete. Retry against a running instance.";

    /// <summary>A stream's <c>error</c> event (OpenAI's shape).</summary>
    internal static string ErrorEvent(string message, string type) =>
        new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type } }.ToJsonString();

    // `trace`, the generation's, goes to the citation service, which disposes it.
    private static async Task<AnswerCitations> CiteAsync(LoadedModel loaded, Job job, string answer, IReadOnlyList<int> generatedIds, GenerationTrace? trace, ServerTelemetry telemetry,
        CancellationToken cancellationToken)
    {
        // A conversation without passages was not generated from the citation prompt: its ids do not continue it.
        var ids = job.Passages.Count > 0 ? generatedIds : null;
        var citations = await loaded.Citations.CiteAsync(job.Question, job.Passages, answer, loaded.Model.ModelId, job.Citations, ids, trace, cancellationToken);
        if (citations.Details is { } details)
            telemetry.Record(details);
        return citations;
    }

    /// <summary>Chat Completions' annotation shape: <c>{type: "url_citation", url_citation: {url, title, start_index, end_index, ...}}</c>.</summary>
    private static JsonArray Annotations(AnswerCitations citations)
    {
        var annotations = new JsonArray();
        foreach (var sentence in citations.Sentences)
        {
            foreach (var citation in sentence.Citations)
            {
                var passage = citations.PassageOf(citation);
                annotations.Add(new JsonObject
                {
                    ["type"] = "url_citation",
                    ["url_citation"] = ApiRequests.UrlCitation(passage.Url, passage.Id!, passage.Title, sentence.Start, sentence.End, citation.Score),
                });
            }
        }
        return annotations;
    }

    private static JsonObject Summary(AnswerCitations citations) => new()
    {
        ["status"] = JsonSerializer.SerializeToNode(citations.Status, MirageJson.Options),
        // The service's own reason speaks of Semantic Kernel settings; an HTTP client sends passages itself.
        ["reason"] = citations.Status == CitationStatus.NoPassages
            ? "No passages were sent, so there is nothing to cite: add a 'passages' list or tool messages holding retrieval results."
            : citations.Reason,
        ["mode"] = JsonSerializer.SerializeToNode(citations.Mode, MirageJson.Options),
        ["attribution_model"] = citations.AttributionModel,
    };

    private static string FinishReason(FinishReason reason) => reason == Core.Models.FinishReason.Length ? "length" : "stop";
}
