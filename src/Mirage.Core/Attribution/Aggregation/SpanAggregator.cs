using Mirage.Core.Tokenization;

namespace Mirage.Core.Attribution.Aggregation;

/// <summary>
/// From token scores to spans: words, sentences, passages. Spans are [start, end) token
/// positions; scores outside every span are left out.
/// </summary>
public static class SpanAggregator
{
    /// <summary>Each row of <paramref name="scores"/> reduced to one value per span.</summary>
    public static double[][] Aggregate(IReadOnlyList<float[]> scores, IReadOnlyList<(int Start, int End)> spans, string function = "sum")
    {
        var aggregate = AggregationFunctions.Get(function);
        return scores.Select(row => spans.Select(span =>
        {
            if (span.Start < 0 || span.End < span.Start || span.End > row.Length)
                throw new MirageException($"Span [{span.Start}, {span.End}) is outside the {row.Length} scored positions.");
            return aggregate(row.AsSpan(span.Start, span.End - span.Start));
        }).ToArray()).ToArray();
    }

    /// <summary>
    /// Rows (one per target step) combined over groups of steps, e.g. the answer tokens of each
    /// sentence: position by position, the group's rows are aggregated.
    /// </summary>
    public static float[][] AggregateRows(IReadOnlyList<float[]> scores, IReadOnlyList<(int Start, int End)> groups, string function = "sum")
    {
        var aggregate = AggregationFunctions.Get(function);
        return groups.Select(group =>
        {
            int width = scores.Count == 0 ? 0 : scores[0].Length;
            var column = new float[group.End - group.Start];
            var result = new float[width];
            for (int j = 0; j < width; j++)
            {
                for (int k = group.Start; k < group.End; k++)
                    column[k - group.Start] = scores[k][j];
                result[j] = (float)aggregate(column);
            }
            return result;
        }).ToArray();
    }

    /// <summary>
    /// Word spans over tokens: a new word starts at a token whose text begins after whitespace
    /// (or at the first token); empty-span tokens (BOS, trailing bytes of a character) join the
    /// current word.
    /// </summary>
    public static IReadOnlyList<(int Start, int End)> WordSpans(IReadOnlyList<TextToken> tokens, string text)
    {
        var words = new List<(int, int)>();
        int start = 0;
        bool hasText = false;
        for (int i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (token.End <= token.Start)
                continue;
            bool startsWord = token.Start == 0 || char.IsWhiteSpace(text[token.Start - 1]) || !char.IsLetterOrDigit(text[token.Start]);
            if (startsWord && hasText)
            {
                words.Add((start, i));
                start = i;
            }
            hasText = true;
        }
        if (tokens.Count > 0)
            words.Add((start, tokens.Count));
        return words;
    }
}
