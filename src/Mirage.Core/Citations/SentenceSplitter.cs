using System.Text.RegularExpressions;

namespace Mirage.Core.Citations;

/// <summary>A sentence of the answer: its text and UTF-16 [start, end) in the answer.</summary>
public readonly record struct SentenceSpan(int Start, int End, string Text);

/// <summary>
/// Splits an answer into sentences on its characters (never by re-tokenising), at line breaks,
/// after '.', '!', '?' or '…' (with closing quotes or brackets) followed by whitespace, and after
/// '。', '！' or '？' (which need none), except where a period does not end a sentence:
/// abbreviations ("Dr.", "e.g.", "No. 5"), initials and acronyms unless a word that starts
/// sentences follows ("J. Smith", "the U.S. Embassy", but "Plan B. It"), day ordinals before a month
/// ("Am 3. Oktober"), list markers ("1. ", "b. "), and any terminator followed by a lower-case
/// word ("'Why?' she asked") that is not a list marker. Decimals and URLs have no space after
/// their periods, so they never split. Surrounding whitespace is not part of a sentence.
/// </summary>
public static partial class SentenceSplitter
{
    [GeneratedRegex(@"(?<end>[.!?…]+[""'”’)\]]*)(?=\s)|(?<wide>[。！？]+[」』）”’]*)|(?<line>[\r\n]+)")]
    private static partial Regex Candidate();

    // "b. Serve it": a lower-case list marker, which starts a sentence although it is lower case.
    [GeneratedRegex(@"^[a-z][.)]\s+\S")]
    private static partial Regex LowerListMarker();

    // Initials run together ("U.S", "U.K", "e.g" is an abbreviation): letters each followed by a period.
    [GeneratedRegex(@"^(\p{L}\.)+\p{L}$")]
    private static partial Regex Acronym();

    // Words that begin sentences and never follow an initial in a name: after "Plan B." or "the
    // U.S.", one of them means the period ended the sentence.
    private static readonly HashSet<string> SentenceStarters = new(StringComparer.Ordinal)
    {
        "A", "An", "The", "It", "Its", "This", "That", "These", "Those", "There", "Then", "Thus", "He", "She", "They", "We", "I", "You",
        "His", "Her", "Their", "Our", "My", "In", "On", "At", "After", "Before", "But", "And", "So", "However", "Also", "When", "While",
        "If", "As", "For", "Of", "To", "With", "Both", "Each", "Some", "No", "Yes", "Why", "What", "How", "Who", "Where",
    };

    // Month names that follow a day's ordinal with a period (German: "am 3. Oktober").
    private static readonly HashSet<string> Months = new(StringComparer.OrdinalIgnoreCase)
    {
        "Januar", "Jänner", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember",
    };

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
            if (candidate.Groups["line"].Success || candidate.Groups["wide"].Success)
            {
                int end = candidate.Groups["line"].Success ? candidate.Index : candidate.Index + candidate.Length;
                Add(text, start, end, sentences);
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
            return LowerListMarker().IsMatch(text.AsSpan(after));
        if (end.Value != ".")
            return true;
        int nextEnd = after;
        while (nextEnd < text.Length && char.IsLetter(text[nextEnd]))
            nextEnd++;
        var nextWord = text[after..nextEnd];

        // The word the period closes, without opening quotes or brackets.
        int wordStart = end.Index;
        while (wordStart > sentenceStart && !char.IsWhiteSpace(text[wordStart - 1]))
            wordStart--;
        var word = text[wordStart..end.Index].TrimStart('"', '\'', '“', '‘', '(', '[');
        if (word.Length == 0)
            return true;
        if (Abbreviations.Contains(word) || (char.IsDigit(next) && BeforeNumbers.Contains(word)))
            return false;
        // An initial ("J. Smith") or acronym ("the U.S. Embassy"), unless a sentence starts after it ("Plan B. It").
        if ((word.Length == 1 && char.IsUpper(word[0])) || Acronym().IsMatch(word))
            return SentenceStarters.Contains(nextWord);
        // A day's ordinal before its month ("Am 3. Oktober").
        if (word.Length <= 2 && word.All(char.IsAsciiDigit) && Months.Contains(nextWord))
            return false;
        // A list marker at the start of the sentence ("1. ", "b. ").
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
