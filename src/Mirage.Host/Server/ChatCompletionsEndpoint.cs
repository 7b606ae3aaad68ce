using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Tokenization;
using Mirage.SemanticKernel;
using Mirage.SemanticKernel.Passages;

namespace Mirage.Host.Server;

/// <summary>A chat message: text content, or OpenAI's list of content parts; an assistant's tool calls are accepted and not interpreted.</summary>
public sealed record ChatMessageInput(string Role, JsonElement? Content = null, string? Name = null, string? ToolCallId = null, JsonElement? ToolCalls = null, string? Refusal = null)
{
    /// <summary>The message's text (text parts joined).</summary>
    public string Text => Content switch
    {
        { ValueKind: JsonValueKind.String } s => s.GetString()!,
        { ValueKind: JsonValueKind.Array } parts => string.Concat(parts.EnumerateArray()
            .Where(p => p.TryGetProperty("type", out var t) && t.GetString() == "text" && p.TryGetProperty("text", out _))
            .Select(p => p.GetProperty("text").GetString())),
        _ => "",
    };
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
    private sealed record Job(int[] PromptIds, GenerationOptions Generation, string Question, IReadOnlyList<Passage> Passages, CitationOptions Citations);

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

        Job job;
        try
        {
            job = CreateJob(request!, loaded, options);
        }
        catch (Exception e) when (e is Core.MirageException or ArgumentException)
        {
            return ApiRequests.Problem(StatusCodes.Status400BadRequest, "Invalid request", e.Message);
        }
        if (request!.Stream)
        {
            var streamed = await Scheduling.RunAsync(http, options, ct => queue.TryEnqueue(c => StreamAsync(http, loaded, job, telemetry, c), ct));
            return streamed.Error ?? Results.Empty;
        }
        var outcome = await Scheduling.RunAsync(http, options, ct => queue.TryEnqueue(c => CompleteAsync(loaded, job, telemetry, c), ct));
        return outcome.Error ?? Results.Content(outcome.Value!.ToJsonString(), "application/json; charset=utf-8");
    }

    private static IResult? Validate(ChatCompletionRequest request, ServerOptions options)
    {
        int? tokens = request.MaxCompletionTokens ?? request.MaxTokens;
        string? problem =
            request.Messages.Count == 0 ? "'messages' is empty."
            : !request.Messages.Any(m => m.Role == "user") ? "'messages' has no user message to answer."
            : request.Messages.FirstOrDefault(m => m.Role is not ("system" or "developer" or "user" or "assistant" or "tool")) is { } odd ? $"Unknown role '{odd.Role}'."
            : request.N is not (null or 1) ? "'n' must be 1: one answer per request."
            : tokens is < 1 ? "max_tokens must be at least 1."
            : tokens > options.MaxTokens ? $"max_tokens {tokens} is above the limit of {options.MaxTokens} (Server:MaxTokens)."
            : PassageInput.Problem(request.Passages ?? [], options.MaxPassages);
        return problem is null ? null : ApiRequests.Problem(StatusCodes.Status400BadRequest, "Invalid request", problem);
    }

    private static Job CreateJob(ChatCompletionRequest request, LoadedModel loaded, ServerOptions options)
    {
        var question = request.Messages.Last(m => m.Role == "user").Text;
        // Retrieval results sent back as tool messages count too; the collector drops repeated text.
        var collector = new PassageCollector();
        collector.Add(PassageInput.ToPassages(request.Passages ?? []));
        foreach (var tool in request.Messages.Where(m => m.Role == "tool"))
            collector.Add(loaded.Citations.Extractor.Extract(tool.Text));
        var passages = collector.Snapshot();
        var citationOptions = request.Citations?.ToOptions() ?? new CitationOptions();
        int[] prompt = passages.Count > 0
            ? CitationInput.AnswerPrompt(loaded.Model, question, passages, citationOptions.Prompt)
            : ConversationPrompt.Encode(loaded.Model.Tokenizer, request.Messages.Select(m => new ChatMessage(m.Role, m.Text)).ToList());
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
        };
        generation.Validate();
        return new Job(prompt, generation, question, passages, citationOptions);
    }

    private static async Task<JsonObject> CompleteAsync(LoadedModel loaded, Job job, ServerTelemetry telemetry, CancellationToken cancellationToken)
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
        var answer = generated.Text.Trim();
        var citations = await CiteAsync(loaded, job, answer, telemetry, cancellationToken);
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

    private static async Task<bool> StreamAsync(HttpContext http, LoadedModel loaded, Job job, ServerTelemetry telemetry, CancellationToken cancellationToken)
    {
        using var span = ServerTelemetry.StartOperation("chat", loaded.Model.ModelId);
        var response = http.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        var id = $"chatcmpl-{Guid.NewGuid():N}";
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        async Task Send(JsonObject delta, string? finish = null)
        {
            var chunk = new JsonObject
            {
                ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = loaded.Model.ModelId,
                ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
            };
            await response.WriteAsync($"data: {chunk.ToJsonString()}\n\n", cancellationToken);
            await response.Body.FlushAsync(cancellationToken);
        }

        await Send(new JsonObject { ["role"] = "assistant", ["content"] = "" });
        var text = new StringBuilder();
        int generated = 0;
        await loaded.Model.ComputeGate.WaitAsync(cancellationToken);
        try
        {
            foreach (var token in loaded.Model.GenerateTokens(job.PromptIds, job.Generation, cancellationToken))
            {
                generated++;
                if (token.TextDelta.Length == 0)
                    continue;
                text.Append(token.TextDelta);
                await Send(new JsonObject { ["content"] = token.TextDelta });
            }
        }
        finally
        {
            loaded.Model.ComputeGate.Release();
        }
        span?.SetTag("gen_ai.usage.input_tokens", job.PromptIds.Length).SetTag("gen_ai.usage.output_tokens", generated);
        // Citations index the streamed text as sent, so it is not trimmed here.
        var citations = await CiteAsync(loaded, job, text.ToString(), telemetry, cancellationToken);
        await Send(new JsonObject { ["annotations"] = Annotations(citations), ["mirage"] = Summary(citations) });
        await Send([], "stop");
        await response.WriteAsync("data: [DONE]\n\n", cancellationToken);
        return true;
    }

    private static async Task<AnswerCitations> CiteAsync(LoadedModel loaded, Job job, string answer, ServerTelemetry telemetry, CancellationToken cancellationToken)
    {
        var citations = await loaded.Citations.CiteAsync(job.Question, job.Passages, answer, loaded.Model.ModelId, job.Citations, cancellationToken);
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
                    ["url_citation"] = new JsonObject
                    {
                        ["url"] = ApiRequests.PassageUrl(passage.Url, passage.Id),
                        ["title"] = passage.Title ?? passage.Id,
                        ["start_index"] = sentence.Start,
                        ["end_index"] = sentence.End,
                        ["passage_id"] = passage.Id,
                        ["score"] = citation.Score,
                    },
                });
            }
        }
        return annotations;
    }

    private static JsonObject Summary(AnswerCitations citations) => new()
    {
        ["status"] = JsonSerializer.SerializeToNode(citations.Status, MirageJson.Options),
        ["reason"] = citations.Reason,
        ["mode"] = JsonSerializer.SerializeToNode(citations.Mode, MirageJson.Options),
        ["attribution_model"] = citations.AttributionModel,
    };

    private static string FinishReason(FinishReason reason) => reason == Core.Models.FinishReason.Length ? "length" : "stop";
}
