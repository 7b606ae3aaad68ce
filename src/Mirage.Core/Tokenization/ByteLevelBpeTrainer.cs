using System.Text;
using System.Text.RegularExpressions;

namespace Mirage.Core.Tokenization;

/// <summary>
/// Learns byte-level BPE merges from a corpus (GPT-2's scheme: split text with the GPT-2 regex,
/// spell each piece with the byte-to-character map, then repeatedly merge the most frequent
/// adjacent pair). The result is written with <see cref="TokenizerJsonWriter.WriteByteLevel"/>.
/// </summary>
public static partial class ByteLevelBpeTrainer
{
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex Pretokenizer();

    /// <summary>Learns up to <paramref name="merges"/> merges; pairs seen fewer than <paramref name="minFrequency"/> times are not merged.</summary>
    public static IReadOnlyList<(string Left, string Right)> Train(IEnumerable<string> corpus, int merges, int minFrequency = 2)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var text in corpus)
            foreach (Match piece in Pretokenizer().Matches(text))
                counts[piece.Value] = counts.GetValueOrDefault(piece.Value) + 1;

        var map = TokenizerJsonWriter.ByteToChar;
        var words = counts.Select(kv => (Symbols: Encoding.UTF8.GetBytes(kv.Key).Select(b => map[b].ToString()).ToList(), Count: kv.Value)).ToList();
        var learned = new List<(string, string)>();
        for (int m = 0; m < merges; m++)
        {
            var pairs = new Dictionary<(string, string), int>();
            foreach (var (symbols, count) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                    pairs[(symbols[i], symbols[i + 1])] = pairs.GetValueOrDefault((symbols[i], symbols[i + 1])) + count;
            if (pairs.Count == 0)
                break;
            // Most frequent first; ties broken by the pair's text, so training is deterministic.
            var best = pairs.OrderByDescending(p => p.Value).ThenBy(p => p.Key.Item1, StringComparer.Ordinal).ThenBy(p => p.Key.Item2, StringComparer.Ordinal).First();
            if (best.Value < minFrequency)
                break;
            learned.Add(best.Key);
            var merged = best.Key.Item1 + best.Key.Item2;
            foreach (var (symbols, _) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                    if (symbols[i] == best.Key.Item1 && symbols[i + 1] == best.Key.Item2)
                    {
                        symbols[i] = merged;
                        symbols.RemoveAt(i + 1);
                    }
        }
        return learned;
    }
}
