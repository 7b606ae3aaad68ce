namespace Mirage.Core.Pecore;

/// <summary>Selecting answer tokens by their scores: pure functions over plain arrays.</summary>
public static class TokenSelection
{
    /// <summary>
    /// mean + k * std of <paramref name="scores"/>. <paramref name="ddof"/> = 0 is the population
    /// std (MIRAGE's citation step, the default); 1 the sample std (Inseq's attribute-context).
    /// </summary>
    public static double MeanStdThreshold(IReadOnlyList<double> scores, double k, int ddof)
    {
        if (scores.Count == 0)
            return double.PositiveInfinity;
        double mean = scores.Average();
        int denominator = scores.Count - ddof;
        double variance = denominator <= 0 ? 0 : scores.Sum(s => (s - mean) * (s - mean)) / denominator;
        return mean + k * Math.Sqrt(variance);
    }

    /// <summary>
    /// Tokens whose |score| reaches the threshold (statistics over the eligible tokens only), then,
    /// if <paramref name="topK"/> is set, only the k largest |scores| among them.
    /// </summary>
    public static bool[] Select(IReadOnlyList<double> scores, IReadOnlyList<bool> eligible, double threshold, int? topK)
    {
        var selected = new bool[scores.Count];
        var passing = Enumerable.Range(0, scores.Count)
            .Where(i => eligible[i] && Math.Abs(scores[i]) >= threshold)
            .OrderByDescending(i => Math.Abs(scores[i]))
            .Take(topK ?? int.MaxValue);
        foreach (var i in passing)
            selected[i] = true;
        return selected;
    }
}
