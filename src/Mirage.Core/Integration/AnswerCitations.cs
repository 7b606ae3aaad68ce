using System.Text.Json;
using System.Text.Json.Serialization;
using Mirage.Core.Citations;

namespace Mirage.Core.Integration;

/// <summary>What became of an answer's citations.</summary>
[JsonConverter(typeof(SnakeCaseEnumConverter<CitationStatus>))]
public enum CitationStatus
{
    /// <summary>Citations were computed (a sentence may still cite nothing).</summary>
    Cited,
    /// <summary>No retrieval result was seen in this request.</summary>
    NoPassages,
    /// <summary>The answer is empty.</summary>
    EmptyAnswer,
    /// <summary>Prompt, passages and answer do not fit in the attribution model's context.</summary>
    TooLong,
    /// <summary>Citations took longer than the configured timeout.</summary>
    TimedOut,
    /// <summary>More passages than <see cref="MirageCitationOptions.MaxPassages"/>: none are cited rather than only some.</summary>
    TooManyPassages,
    /// <summary>Citing would take more model work than <see cref="Core.Citations.CitationOptions.MaxTokenPasses"/> allows.</summary>
    OverBudget,
    /// <summary>Attribution failed; <see cref="AnswerCitations.Reason"/> says why.</summary>
    Failed,
}

/// <summary>Whether the attribution model is the model that wrote the answer.</summary>
[JsonConverter(typeof(SnakeCaseEnumConverter<CitationMode>))]
public enum CitationMode
{
    /// <summary>The answer's own model: citations read the generator's internals.</summary>
    Faithful,
    /// <summary>Another model wrote the answer; a local model teacher-forced it.</summary>
    Proxy,
}

/// <summary>Enum values as snake_case strings.</summary>
public sealed class SnakeCaseEnumConverter<T>() : JsonStringEnumConverter<T>(JsonNamingPolicy.SnakeCaseLower) where T : struct, Enum;

/// <summary>
/// Citations of one answer as Mirage attaches them to SK and M.E.AI results (metadata key
/// <see cref="MetadataKey"/>). Sentence spans are UTF-16 [start, end) in <see cref="Answer"/>.
/// </summary>
/// <param name="Status">What happened; anything but <see cref="CitationStatus.Cited"/> carries a <paramref name="Reason"/>.</param>
/// <param name="Reason">Why there are no citations, for people.</param>
/// <param name="Mode">Faithful or proxy.</param>
/// <param name="AttributionModel">The local model that computed the citations.</param>
/// <param name="AnswerModel">The model that wrote the answer, when known.</param>
/// <param name="Answer">The cited answer text.</param>
/// <param name="Passages">The passages captured in this request, in retrieval order.</param>
/// <param name="Sentences">Per answer sentence, its citations (empty unless cited).</param>
public sealed record AnswerCitations(
    CitationStatus Status,
    string? Reason,
    CitationMode Mode,
    string AttributionModel,
    string? AnswerModel,
    string Answer,
    IReadOnlyList<Passage> Passages,
    IReadOnlyList<CitedSentence> Sentences)
{
    /// <summary>The metadata / additional-properties key under which results carry their citations.</summary>
    public const string MetadataKey = "mirage.citations";

    /// <summary>The full engine result (scores, tokens, timings) when citations were computed.</summary>
    [JsonIgnore]
    public CitationResult? Details { get; init; }

    /// <summary>The passage a citation points at.</summary>
    public Passage PassageOf(Citation citation) => Passages[citation.PassageIndex];

    /// <summary>
    /// The citations stored under <see cref="MetadataKey"/> in a result's metadata or additional
    /// properties: the record itself, or its JSON after a bridge or a cache carried it; else null.
    /// </summary>
    public static AnswerCitations? From(IEnumerable<KeyValuePair<string, object?>>? properties) =>
        properties?.FirstOrDefault(p => p.Key == MetadataKey).Value switch
        {
            AnswerCitations citations => citations,
            JsonElement json => json.Deserialize<AnswerCitations>(MirageJson.Options),
            string json => MirageJson.Deserialize<AnswerCitations>(json),
            _ => null,
        };

    /// <summary>This result as JSON (snake_case, as every Mirage result).</summary>
    public string ToJson() => MirageJson.Serialize(this);
}

/// <summary>Citations failed and <see cref="MirageCitationOptions.Strict"/> is on.</summary>
public sealed class MirageCitationException : MirageException
{
    /// <summary>Creates the exception for <paramref name="status"/>.</summary>
    public MirageCitationException(CitationStatus status, string message) : base(message) => Status = status;

    /// <summary>Creates the exception for <paramref name="status"/>, wrapping its cause.</summary>
    public MirageCitationException(CitationStatus status, string message, Exception inner) : base(message, inner) => Status = status;

    /// <summary>What went wrong, machine-readable.</summary>
    public CitationStatus Status { get; }
}
