using System.Text.Json.Serialization;
using Mirage.Core.Models;

namespace Mirage.Core.Citations;

/// <summary>What to cite: a question, the retrieved passages, and the answer to cite against them.</summary>
/// <param name="Question">The user's question.</param>
/// <param name="Passages">The retrieved passages, in the order they are shown to the model.</param>
/// <param name="Answer">
/// The answer (generated earlier or supplied); it is teacher-forced, never regenerated. Its leading
/// and trailing whitespace is not tokenised (" A." and "A." are cited alike), and every span
/// indexes the answer exactly as given.
/// </param>
/// <param name="Options">Settings; null uses the engine's defaults.</param>
/// <param name="AnswerTokenIds">
/// The ids the model generated for the answer after the with-context prompt, when Mirage generated
/// it: they are cited as they are, not re-tokenised from the text. The shortest prefix whose text
/// is the answer is used (a stop string or end-of-sequence token after it is left out); when no
/// prefix is (the last token straddles a stop string), the text is tokenised instead.
/// </param>
public sealed record CitationRequest(string Question, IReadOnlyList<Passage> Passages, string Answer, CitationOptions? Options = null, IReadOnlyList<int>? AnswerTokenIds = null)
{
    /// <summary>
    /// The generation that wrote the answer, kept with <see cref="GenerationOptions.KeepTrace"/>: when
    /// its prompt is the citation's with-context prompt and its tokens the answer's, citing reuses its
    /// logits and prompt KV cache instead of a pass over prompt and answer; otherwise it is ignored.
    /// The caller disposes it after citing.
    /// </summary>
    [JsonIgnore]
    public GenerationTrace? Trace { get; init; }
}
