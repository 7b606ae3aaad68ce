using Mirage.Eval.Data;

namespace Mirage.Eval.Harness;

/// <summary>Precision, recall and F1, in percent.</summary>
public sealed record PrecisionRecall(double Precision, double Recall)
{
    /// <summary>Harmonic mean of precision and recall (0 when both are 0).</summary>
    public double F1 => Precision + Recall == 0 ? 0 : 2 * Precision * Recall / (Precision + Recall);
}

/// <summary>
/// How one sentence's citations compare with its gold passages. <c>Abstained</c>: no gold and no
/// citation (right); <c>Spurious</c>: no gold but cited; <c>Missed</c>: gold but not cited.
/// </summary>
public enum SentenceOutcome
{
    /// <summary>Cites exactly the gold passages.</summary>
    Exact,
    /// <summary>Cites some gold passages, or gold and others.</summary>
    Partial,
    /// <summary>Cites only passages outside the gold.</summary>
    Wrong,
    /// <summary>Has gold passages but cites none.</summary>
    Missed,
    /// <summary>Has no gold passage but cites one.</summary>
    Spurious,
    /// <summary>Has no gold passage and cites none.</summary>
    Abstained,
}

/// <summary>One item's counts for the exact metrics and its ALCE scores.</summary>
/// <param name="Citations">Citations made (after ALCE's cap of 3 per sentence for the ALCE scores; all for exact ones).</param>
/// <param name="CorrectCitations">Citations of a gold passage.</param>
/// <param name="GoldCitations">Gold passages over all sentences.</param>
/// <param name="AlceRecall">ALCE citation recall of the item (0-1), null without a judge.</param>
/// <param name="AlcePrecision">ALCE citation precision of the item (0-1), null without a judge.</param>
public sealed record ItemScore(int Citations, int CorrectCitations, int GoldCitations, double? AlceRecall, double? AlcePrecision);

/// <summary>Citation metrics: exact ones against gold provenance, and ALCE's judge-based ones.</summary>
public static class CitationMetrics
{
    /// <summary>ALCE reads at most this many citations per sentence.</summary>
    public const int AlceMaxCitations = 3;

    /// <summary>The outcome of one sentence's citations against its gold passages.</summary>
    public static SentenceOutcome Outcome(IReadOnlyCollection<int> cited, IReadOnlyCollection<int> gold)
    {
        int correct = cited.Count(gold.Contains);
        return (gold.Count, cited.Count) switch
        {
            (0, 0) => SentenceOutcome.Abstained,
            (0, _) => SentenceOutcome.Spurious,
            (_, 0) => SentenceOutcome.Missed,
            _ when correct == 0 => SentenceOutcome.Wrong,
            _ when correct == cited.Count && correct == gold.Count => SentenceOutcome.Exact,
            _ => SentenceOutcome.Partial,
        };
    }

    /// <summary>
    /// Scores one item: exact counts when it has gold, and ALCE recall/precision when a judge is
    /// given. ALCE, per sentence: recall is 1 when it has citations, all valid, and their
    /// concatenation entails it. Precision, per citation: in an entailed sentence with several
    /// citations, a citation counts unless its passage alone does not entail the sentence and the
    /// others still do; a lone citation counts when its sentence is entailed. The item's recall
    /// averages over sentences, its precision over citations (0 when there are none).
    /// </summary>
    public static async Task<ItemScore> ScoreAsync(AlceItem item, IReadOnlyList<int[]> cited, IEntailmentJudge? judge, CancellationToken cancellationToken = default)
    {
        var gold = item.GoldCitations;
        int made = cited.Sum(c => c.Length);
        int correct = gold is null ? 0 : cited.Select((c, s) => c.Count(gold[s].Contains)).Sum();
        int goldCount = gold?.Sum(g => g.Length) ?? 0;
        if (judge is null)
            return new ItemScore(made, correct, goldCount, null, null);

        double recalled = 0, precise = 0;
        int citations = 0;
        for (int s = 0; s < cited.Count; s++)
        {
            var refs = cited[s].Take(AlceMaxCitations).ToList();
            citations += refs.Count;
            bool valid = refs.Count > 0 && refs.All(r => r >= 0 && r < item.Docs.Count);
            bool entailed = valid && await judge.EntailsAsync(item, s, refs, cancellationToken).ConfigureAwait(false);
            if (entailed)
                recalled++;
            if (!entailed)
                continue;
            if (refs.Count == 1)
            {
                precise++;
                continue;
            }
            foreach (var r in refs)
            {
                bool alone = await judge.EntailsAsync(item, s, [r], cancellationToken).ConfigureAwait(false);
                bool othersSuffice = !alone && await judge.EntailsAsync(item, s, refs.Where(o => o != r).ToList(), cancellationToken).ConfigureAwait(false);
                if (!othersSuffice)
                    precise++;
            }
        }
        return new ItemScore(made, correct, goldCount, recalled / cited.Count, citations == 0 ? 0 : precise / citations);
    }

    /// <summary>Micro-averaged exact precision/recall over all items' citations, in percent.</summary>
    public static PrecisionRecall Exact(IReadOnlyCollection<ItemScore> items)
    {
        double made = items.Sum(i => i.Citations), correct = items.Sum(i => i.CorrectCitations), gold = items.Sum(i => i.GoldCitations);
        return new PrecisionRecall(made == 0 ? 0 : 100 * correct / made, gold == 0 ? 0 : 100 * correct / gold);
    }

    /// <summary>ALCE's aggregate: item scores averaged over items, in percent.</summary>
    public static PrecisionRecall Alce(IReadOnlyCollection<ItemScore> items) =>
        new(100 * items.Average(i => i.AlcePrecision ?? 0), 100 * items.Average(i => i.AlceRecall ?? 0));
}
