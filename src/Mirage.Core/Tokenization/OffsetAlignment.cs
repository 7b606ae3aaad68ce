namespace Mirage.Core.Tokenization;

/// <summary>
/// Maps indices of a tokenizer's normalized string back to the original text. SentencePiece
/// normalization adds a dummy-prefix '▁', turns spaces into '▁' and may drop repeated spaces;
/// walking both strings side by side recovers where each normalized character came from.
/// </summary>
internal static class OffsetAlignment
{
    private const char Metaspace = '\u2581';

    /// <summary>For each normalized index (and one past the end), the original index it starts at.</summary>
    public static int[] Align(string original, string normalized)
    {
        var map = new int[normalized.Length + 1];
        int j = 0;
        for (int i = 0; i < normalized.Length; i++)
        {
            char c = normalized[i];
            if (c == Metaspace)
            {
                map[i] = j;
                if (j < original.Length && char.IsWhiteSpace(original[j]) && original[j] is not ('\n' or '\r'))
                    j++;
                continue;
            }
            // Whitespace the normalizer dropped (collapsed or leading runs).
            while (j < original.Length && original[j] != c && original[j] == ' ')
                j++;
            map[i] = j;
            if (j < original.Length)
                j++;
        }
        map[normalized.Length] = Math.Min(j, original.Length);
        return map;
    }

    /// <summary>The original span of a normalized range.</summary>
    public static (int Start, int End) Span(int[] map, int normalizedStart, int normalizedEnd)
    {
        int start = map[Math.Min(normalizedStart, map.Length - 1)];
        int end = normalizedEnd <= normalizedStart ? start : Math.Max(start, map[Math.Min(normalizedEnd, map.Length - 1)]);
        return (start, end);
    }
}
