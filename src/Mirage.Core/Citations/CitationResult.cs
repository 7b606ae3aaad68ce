namespace Mirage.Core.Citations;

/// <summary>
/// The citations of one answer, with every number needed to audit, re-threshold or recompute them.
/// Serialises to JSON with stable snake_case names (see <see cref="MirageJson"/>).
/// </summary>
/// <param name="ModelId">The attribution model.</param>
/// <param name="Question">The question.</param>
/// <param name="Answer">The answer that was cited.</param>
/// <param name="Sentences">The answer's sentences with their citations.</param>
/// <param name="Tokens">Every answer token with its CTI score and contrast token.</param>
/// <param name="Passages">The passages as rendered, with their token ranges in the with-context input.</param>
/// <param name="Cues">Per selected token, the CCI scores over the with-context prompt.</param>
/// <param name="Inputs">The exact token ids of both inputs.</param>
/// <param name="CtiThreshold">The selection threshold applied to |CTI|.</param>
/// <param name="Options">The options used.</param>
/// <param name="Cost">Passes run and time per phase.</param>
public sealed record CitationResult(
    string ModelId,
    string Question,
    string Answer,
    IReadOnlyList<CitedSentence> Sentences,
    IReadOnlyList<AnswerToken> Tokens,
    IReadOnlyList<PassageSpan> Passages,
    IReadOnlyList<ContextCues> Cues,
    ModelInputs Inputs,
    double CtiThreshold,
    CitationOptions Options,
    CitationCost Cost)
{
    /// <summary>
    /// What the attribution model's weights were stored as (<see cref="Models.LanguageModel.SourceFormat"/>):
    /// the file format, its tensor types, and whether a GGUF file's weights were dequantized.
    /// </summary>
    public string? ModelSource { get; init; }

    /// <summary>
    /// What ran the forward passes, <c>torch</c> or <c>llama.cpp</c> (<see cref="Models.LanguageModel.Engine"/>):
    /// on llama.cpp the citations explain the quantized weights as llama.cpp computes with them.
    /// </summary>
    public string? Engine { get; init; }

    /// <summary>With <see cref="CitationMethod.Ablation"/>: what was measured per sentence.</summary>
    public IReadOnlyList<SentenceAblation>? Ablation { get; init; }
}

/// <summary>One answer sentence: UTF-16 [start, end) in the answer, and the passages it cites.</summary>
public sealed record CitedSentence(int Index, int Start, int End, string Text, IReadOnlyList<Citation> Citations)
{
    /// <summary>With verification on and citations made: their measured necessity and sufficiency, and whether they hold up.</summary>
    public CitationSupport? Support { get; init; }
}

/// <summary>A cited passage, its summed score, and the answer tokens that led to it.</summary>
public sealed record Citation(string PassageId, int PassageIndex, double Score, IReadOnlyList<CitationTrigger> Triggers)
{
    /// <summary>With <see cref="AblationOptions.Evidence"/>: the passage's sentences whose removal lowers the cited sentence, most first.</summary>
    public IReadOnlyList<PassageEvidence>? Evidence { get; init; }
}

/// <summary>A sentence of a cited passage: UTF-16 [start, end) in the passage's text, and how much removing it lowers the cited sentence (nats).</summary>
public sealed record PassageEvidence(int Start, int End, string Text, double Drop);

/// <summary>An answer token's contribution to a citation.</summary>
public sealed record CitationTrigger(int TokenIndex, string Text, double Score);

/// <summary>
/// An answer token: id, text, UTF-16 span in the answer, CTI score, whether it was selected,
/// the no-context contrast token, its sentence, and whether it is a special token (never selected).
/// </summary>
public sealed record AnswerToken(int Index, int Id, string Text, int Start, int End, double Cti, bool Selected, int ContrastId, string ContrastText, int Sentence, bool Special);

/// <summary>
/// A passage as rendered: id, 0-based index, title, url, its block's token positions [start, end)
/// in the with-context input, and where its own text lies in the with-context prompt (UTF-16 [start, end), the block's header excluded).
/// </summary>
public sealed record PassageSpan(string Id, int Index, string? Title, string? Url, int TokenStart, int TokenEnd, int TextStart, int TextEnd);

/// <summary>CCI for one selected answer token: the target's value and one score per with-context prompt position.</summary>
public sealed record ContextCues(int TokenIndex, double TargetValue, float[] Scores);

/// <summary>
/// The inputs exactly as the model saw them: prompt ids then answer ids in each setting, where the
/// answer starts, and the with-context prompt's text with each prompt token's [start, end) in it.
/// </summary>
public sealed record ModelInputs(
    IReadOnlyList<int> WithContextIds,
    IReadOnlyList<int> NoContextIds,
    int WithContextAnswerStart,
    int NoContextAnswerStart,
    string WithContextPrompt,
    IReadOnlyList<int[]> PromptTokenSpans);

/// <summary>What a citation cost: passes run and milliseconds per phase.</summary>
public sealed record CitationCost(int ForwardPasses, int BackwardPasses, double TokenizeMs, double CtiMs, double CciMs, double CitationMs, double TotalMs)
{
    /// <summary>Milliseconds of ablation passes (the ablation method, and verification).</summary>
    public double AblationMs { get; init; }
}
