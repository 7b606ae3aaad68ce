using System.Text.RegularExpressions;

namespace Mirage.Core.Citations;

/// <summary>A sentence of the answer: its text and UTF-16 [start, end) in the answer.</summary>
public readonly record struct SentenceSpan(int Start, int End, string Text);

/// <summary>
/// Splits an answer into sentences on its characters (never by re-tokenising): after '.', '!' or
/// '?' (with closing quotes or brackets) followed by whitespace, and at line breaks. Surrounding
/// whitespace is not part of a sentence.
/// </summary>
public static partial class SentenceSplitter
{
    [GeneratedRegex(@"(?<=[.!?][""'”’)\]]*)\s+|\s*[\r\n]+\s*")]
    private static partial Regex Boundary();

    /// <summary>The sentences of <paramref name="text"/>, in order.</summary>
    public static IReadOnlyList<SentenceSpan> Split(string text)
    {
        var sentences = new List<SentenceSpan>();
        int start = 0;
        foreach (Match boundary in Boundary().Matches(text))
        {
            Add(text, start, boundary.Index, sentences);
            start = boundary.Index + boundary.Length;
        }
        Add(text, start, text.Length, sentences);
        return sentences;
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
