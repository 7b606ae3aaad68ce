namespace Mirage.Core.Attribution.Aggregation;

/// <summary>Combines the scores inside one span into one value.</summary>
public delegate double AggregationFunction(ReadOnlySpan<float> scores);

/// <summary>The named aggregation functions (Inseq's ids); <c>sum</c> is the default for spans.</summary>
public static class AggregationFunctions
{
    private static readonly Dictionary<string, AggregationFunction> Table = new(StringComparer.Ordinal)
    {
        ["sum"] = s => Sum(s),
        ["mean"] = s => s.Length == 0 ? 0 : Sum(s) / s.Length,
        ["max"] = s => s.Length == 0 ? 0 : Max(s, x => x),
        ["absmax"] = s => s.Length == 0 ? 0 : Max(s, Math.Abs),
    };

    /// <summary>The known names.</summary>
    public static IReadOnlyCollection<string> Names => Table.Keys;

    /// <summary>The function with this name.</summary>
    public static AggregationFunction Get(string name) =>
        Table.TryGetValue(name, out var function) ? function
        : throw new MirageException($"Unknown aggregation '{name}'; choose one of {string.Join(", ", Table.Keys)}.");

    private static double Sum(ReadOnlySpan<float> scores)
    {
        double total = 0;
        foreach (var s in scores)
            total += s;
        return total;
    }

    // The element with the largest key, keeping its sign (absmax picks -5 over 3).
    private static double Max(ReadOnlySpan<float> scores, Func<double, double> key)
    {
        double best = scores[0];
        foreach (var s in scores)
            if (key(s) > key(best))
                best = s;
        return best;
    }
}
