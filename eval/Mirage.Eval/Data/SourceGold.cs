using Mirage.Core.Citations;

namespace Mirage.Eval.Data;

/// <summary>
/// Gold for an answer the model wrote itself: per sentence, the passages it took its value from.
/// Rule, fixed before any citer was scored on it: a sentence stating a fact (entity, attribute,
/// value) comes from the passages stating exactly that fact; when none does, from the passages
/// stating that value for that attribute about another entity (a <i>confusion</i>: the model copied
/// another entity's value); when none does either, or the sentence states no fact, from no passage.
/// </summary>
public static class SourceGold
{
    /// <summary>Per sentence of the answer (<paramref name="sentences"/>), given the item's <paramref name="docs"/>: its source passages (0-based) and whether it is a confusion; null when the item's passages state no fact the generator's way.</summary>
    public static (IReadOnlyList<int[]> Gold, IReadOnlyList<bool> Confusions)? For(IReadOnlyList<AlceDoc> docs, IReadOnlyList<SentenceSpan> sentences)
    {
        var stated = docs.Select(d => SentenceSplitter.Split(d.Text).Select(s => ReaderDataGenerator.ReadFact(s.Text)).OfType<Fact>().ToList()).ToList();
        if (stated.All(facts => facts.Count == 0))
            return null;
        var gold = new List<int[]>();
        var confusions = new List<bool>();
        foreach (var sentence in sentences)
        {
            var fact = ReaderDataGenerator.ReadFact(sentence.Text);
            int[] exact = fact is null ? [] : Passages(stated, f => f == fact);
            int[] sameValue = fact is null || exact.Length > 0 ? [] : Passages(stated, f => f.Attribute == fact.Attribute && f.Value == fact.Value);
            gold.Add(exact.Length > 0 ? exact : sameValue);
            confusions.Add(sameValue.Length > 0);
        }
        return (gold, confusions);
    }

    private static int[] Passages(List<List<Fact>> stated, Func<Fact, bool> match) =>
        Enumerable.Range(0, stated.Count).Where(p => stated[p].Any(match)).ToArray();
}
