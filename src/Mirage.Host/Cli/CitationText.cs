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
            if (sentence.Support is { Verified: false })
                text.Append("(unverified)");
            cursor = sentence.End;
        }
        text.Append(result.Answer, cursor, result.Answer.Length - cursor).AppendLine().AppendLine();

        var cited = result.Sentences.SelectMany(s => s.Citations).Select(c => c.PassageIndex).ToHashSet();
        foreach (var passage in result.Passages)
        {
            var label = passage.Title is null ? passage.Id : $"{passage.Id}: {passage.Title}";
            text.AppendLine($"[{passage.Index + 1}] {label}{(passage.Url is null ? "" : $" <{passage.Url}>")}{(cited.Contains(passage.Index) ? "" : " (not cited)")}");
        }
        var grounded = result.Sentences.SelectMany(s => s.Citations.Where(c => c.Evidence is { Count: > 0 }).Select(c => (Sentence: s, Citation: c))).ToList();
        if (grounded.Count > 0)
            text.AppendLine();
        foreach (var (sentence, citation) in grounded)
        {
            var best = citation.Evidence![0];
            text.AppendLine(FormattableString.Invariant($"Sentence {sentence.Index + 1} [{citation.PassageIndex + 1}] rests on \"{best.Text}\" ({best.Drop:F2} nats)."));
        }
        var verified = result.Sentences.Where(s => s.Support is not null).ToList();
        if (verified.Count > 0)
            text.AppendLine();
        foreach (var sentence in verified)
        {
            var support = sentence.Support!;
            text.AppendLine(FormattableString.Invariant($"Sentence {sentence.Index + 1}: removing its passages lowers it by {support.Necessity:F2} nats, ")
                + FormattableString.Invariant($"with only them it changes by {support.Sufficiency:+0.00;-0.00} nats: {(support.Verified ? "verified" : "unverified")}."));
        }
        return text.ToString();
    }
}
