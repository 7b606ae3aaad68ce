using Mirage.Eval.Data;

namespace Mirage.Eval.Reader;

/// <summary>How a reader did on held-out items: all facts right, and the parts of facts right.</summary>
public sealed record ReaderScore(int Items, int Exact, int Facts, int ValuesRight, int EntitiesRight, int UnseenFacts, int UnseenValuesRight);

/// <summary>Checks a generated answer against an item's facts.</summary>
public static class AnswerChecker
{
    /// <summary>Adds one item's answer to a running score.</summary>
    public static ReaderScore Add(ReaderScore score, string answer, AlceItem item)
    {
        var facts = (item.Facts ?? []).OfType<Fact>().ToList();
        int values = facts.Count(f => answer.Contains(f.Value, StringComparison.Ordinal));
        int entities = facts.Count(f => answer.Contains(f.Entity, StringComparison.Ordinal));
        int unseen = item.UnseenValues ? facts.Count(f => f.Attribute == "city") : 0;
        int unseenRight = item.UnseenValues ? facts.Count(f => f.Attribute == "city" && answer.Contains(f.Value, StringComparison.Ordinal)) : 0;
        return new ReaderScore(score.Items + 1, score.Exact + (StatesAllFacts(answer, item) ? 1 : 0), score.Facts + facts.Count,
            score.ValuesRight + values, score.EntitiesRight + entities, score.UnseenFacts + unseen, score.UnseenValuesRight + unseenRight);
    }

    /// <summary>True when every fact's entity and value appear together in one sentence of the answer.</summary>
    public static bool StatesAllFacts(string answer, AlceItem item) =>
        (item.Facts ?? []).OfType<Fact>().All(f => Mirage.Core.Citations.SentenceSplitter.Split(answer)
            .Any(s => s.Text.Contains(f.Entity, StringComparison.Ordinal) && s.Text.Contains(f.Value, StringComparison.Ordinal)));
}
