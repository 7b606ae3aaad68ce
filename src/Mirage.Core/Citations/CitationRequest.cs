namespace Mirage.Core.Citations;

/// <summary>What to cite: a question, the retrieved passages, and the answer to cite against them.</summary>
/// <param name="Question">The user's question.</param>
/// <param name="Passages">The retrieved passages, in the order they are shown to the model.</param>
/// <param name="Answer">The answer (generated earlier or supplied); it is teacher-forced, never regenerated.</param>
/// <param name="Options">Settings; null uses the engine's defaults.</param>
public sealed record CitationRequest(string Question, IReadOnlyList<Passage> Passages, string Answer, CitationOptions? Options = null);
