using System.Text.RegularExpressions;

namespace Mirage.Core.Citations;

/// <summary>A sentence of the answer: its text and UTF-16 [start, end) in the answer.</summary>
public readonly record struct SentenceSpan(int Start, int End, string Text);

/// <summary>
/// Splits an answer into sentences on its characters (never by re-tokenising), at line breaks and
/// after '.', '!', '?' or '…' (with closing quotes or brackets) followed by whitespace, except
/// where a period does not end a sentence: abbreviations ("Dr.", "e.g.", "No. 5"), initials
/// ("J. Smith"), acronyms before a lower-case word ("the U.S. in 1990"), list markers ("1. "),
/// and any terminator followed by a lower-case word ("'Why?' she asked"). Decimals and URLs have no space after their
/// periods, so they never split. Surrounding whitespace is not part of a sentence.
/// </summary>
public static partial class SentenceSplitter
{
    [GeneratedRegex(@"(?<end>[.!?…]+[""'”’)\]]*)(?=\s)|(?<line>[\r\n]+)")]
    private static partial Regex Candidate();

    // Abbreviations that never end a sentence in an answer (titles, Latin, common shortenings).
    private static readonly HashSet<string> Abbreviations = new(StringComparer.OrdinalIgnoreCase)
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "rev", "hon", "gen", "col", "capt", "lt", "sgt", "gov", "sen", "rep", "pres",
        "vs", "e.g", "i.e", "cf", "al", "approx", "dept", "univ", "est", "ca",
    };

    // Abbreviations that are followed by a number ("No. 5", "Jan. 3", "Fig. 2").
    private static readonly HashSet<string> BeforeNumbers = new(StringComparer.OrdinalIgnoreCase)
    {
        "no", "nos", "fig", "figs", "vol", "vols", "p", "pp", "ch", "sec", "art", "ed", "op",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    };

    /// <summary>The sentences of <paramref name="text"/>, in order.</summary>
    public static IReadOnlyList<SentenceSpan> Split(string text)
    {
        var sentences = new List<SentenceSpan>();
        int start = 0;
        foreach (Match candidate in Candidate().Matches(text))
        {
            if (candidate.Groups["line"].Success)
            {
                Add(text, start, candidate.Index, sentences);
                start = candidate.Index + candidate.Length;
            }
            else if (EndsSentence(text, start, candidate.Groups["end"]))
            {
                Add(text, start, candidate.Index + candidate.Length, sentences);
                start = candidate.Index + candidate.Length;
            }
        }
        Add(text, start, text.Length, sentences);
        return sentences;
    }

    private static bool EndsSentence(string text, int sentenceStart, Group end)
    {
        int after = end.Index + end.Length;
        while (after < text.Length && char.IsWhiteSpace(text[after]) && text[after] is not ('\r' or '\n'))
            after++;
        if (after == text.Length || text[after] is '\r' or '\n')
            return true;
        char next = text[after];
        if (char.IsLower(next))
            return false;
        if (end.Value != ".")
            return true;

        // The word the period closes, without opening quotes or brackets.
        int wordStart = end.Index;
        while (wordStart > sentenceStart && !char.IsWhiteSpace(text[wordStart - 1]))
            wordStart--;
        var word = text[wordStart..end.Index].TrimStart('"', '\'', '“', '‘', '(', '[');
        if (word.Length == 0)
            return true;
        if (Abbreviations.Contains(word) || (char.IsDigit(next) && BeforeNumbers.Contains(word)))
            return false;
        // An initial ("J. Smith") or a list marker at the start of the sentence ("1. ", "b. ").
        if (word.Length == 1 && char.IsUpper(word[0]))
            return false;
        bool marker = word.All(char.IsAsciiDigit) || (word.Length == 1 && char.IsLetter(word[0]));
        return !(marker && string.IsNullOrWhiteSpace(text[sentenceStart..wordStart]));
    }

    private static void Add(string text, int start, int end, List<SentenceSpan> sentences)
    {
        while (start < end && char.IsWhiteSpace(text[start]))
            start++;
        while (end > start && char.IsWhiteSpace(text[end - 1]))
            end--;
        if (end > start)
            sentences.Add(new SentenceSpan(start, end, text[start..end]));
    }
}
