using Mirage.Core.Tokenization;

namespace Mirage.Benchmarks;

/// <summary>
/// A byte-level BPE tokenizer with a real model's vocabulary size and every id a token: merges of
/// lower-case letters into pairs, triples and quadruples, then the special tokens last. A random
/// model samples any id, and every one decodes to text (a padded vocabulary would decode to nothing).
/// </summary>
internal static class SyntheticTokenizer
{
    /// <summary>Writes the tokenizer files; the last id is the end-of-text token, and with <paramref name="bos"/> the one before is the begin-of-text token.</summary>
    public static void Write(string directory, int vocabulary, bool bos = false)
    {
        string[] specials = bos ? ["<|begin_of_text|>", "<|end_of_text|>"] : ["<|endoftext|>"];
        int wanted = vocabulary - 256 - specials.Length;
        var letters = Enumerable.Range(0, 26).Select(i => ((char)('a' + i)).ToString()).ToList();
        var merges = new List<(string Left, string Right)>();
        var level = letters;
        while (merges.Count < wanted)
        {
            var next = new List<string>();
            foreach (var left in level)
            foreach (var right in letters)
            {
                if (merges.Count == wanted)
                    break;
                merges.Add((left, right));
                next.Add(left + right);
            }
            level = next;
        }
        Directory.CreateDirectory(directory);
        TokenizerJsonWriter.WriteByteLevel(directory, merges, specials, bos ? specials[0] : null, specials[^1]);
    }
}
