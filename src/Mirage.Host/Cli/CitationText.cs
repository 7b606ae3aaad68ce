using System.Text;
using Mirage.Core.Citations;

namespace Mirage.Host.Cli;

/// <summary>The plain-text view of a citation result: the answer with [n] marks, then a passage legend.</summary>
internal static class CitationText
{
    public static string Render(CitationResult result)
    {
        var text = new StringBuilder();
        int cursor = 0;
        foreach (var sentence in result.Sentences)
        {
            text.Append(result.Answer, cursor, sentence.End - cursor);
            foreach (var citation in sentence.Citations)
                text.Append($"[{citation.PassageIndex + 1}]");
            cursor = sentence.End;
        }
        text.Append(result.Answer, cursor, result.Answer.Length - cursor).AppendLine().AppendLine();

        var cited = result.Sentences.SelectMany(s => s.Citations).Select(c => c.PassageIndex).ToHashSet();
        foreach (var passage in result.Passages)
        {
            var label = passage.Title is null ? passage.Id : $"{passage.Id}: {passage.Title}";
            text.AppendLine($"[{passage.Index + 1}] {label}{(passage.Url is null ? "" : $" <{passage.Url}>")}{(cited.Contains(passage.Index) ? "" : " (not cited)")}");
        }
        return text.ToString();
    }
}
