using Mirage.Eval.Data;

namespace Mirage.Eval.Reader;

/// <summary>Checks a generated answer against an item's facts.</summary>
public static class AnswerChecker
{
    /// <summary>True when every fact's entity and value appear together in one sentence of the answer.</summary>
    public static bool StatesAllFacts(string answer, AlceItem item) =>
        (item.Facts ?? []).OfType<Fact>().All(f => Mirage.Core.Citations.SentenceSplitter.Split(answer)
            .Any(s => s.Text.Contains(f.Entity, StringComparison.Ordinal) && s.Text.Contains(f.Value, StringComparison.Ordinal)));
}
