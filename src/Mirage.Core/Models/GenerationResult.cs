using System.Text.Json.Serialization;

namespace Mirage.Core.Models;

/// <summary>Why generation ended.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<FinishReason>))]
public enum FinishReason
{
    /// <summary>The model produced an end-of-sequence token.</summary>
    Eos,
    /// <summary>A stop string appeared.</summary>
    StopString,
    /// <summary>The token budget (or the context window) ran out.</summary>
    Length,
}

/// <summary>One generated token as it arrives, with the text it adds (held back while a stop string may be forming).</summary>
/// <param name="Id">The token id.</param>
/// <param name="TextDelta">New text safe to show now.</param>
/// <param name="Finish">On the last token only: why generation ended.</param>
public sealed record GeneratedToken(int Id, string TextDelta, FinishReason? Finish = null);

/// <summary>A finished generation.</summary>
/// <param name="Text">The continuation (cut before a stop string, without the EOS token).</param>
/// <param name="TokenIds">The generated ids (including a final EOS, if one was produced).</param>
/// <param name="PromptTokenCount">Tokens in the prompt.</param>
/// <param name="FinishReason">Why generation ended.</param>
/// <param name="PrefillTime">Time of the prompt's forward pass.</param>
/// <param name="DecodeTime">Time of all later steps.</param>
public sealed record GenerationResult(
    string Text,
    IReadOnlyList<int> TokenIds,
    int PromptTokenCount,
    FinishReason FinishReason,
    TimeSpan PrefillTime,
    TimeSpan DecodeTime)
{
    /// <summary>With <see cref="GenerationOptions.KeepTrace"/>: what citing the answer can reuse; the caller disposes it.</summary>
    [JsonIgnore]
    public GenerationTrace? Trace { get; init; }
}
