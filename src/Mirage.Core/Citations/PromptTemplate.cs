using System.Text;

namespace Mirage.Core.Citations;

/// <summary>A rendered prompt and where each passage's block sits in it (UTF-16 offsets).</summary>
/// <param name="Text">The prompt text.</param>
/// <param name="PassageRanges">Per passage, the [start, end) of its rendered block (header included); empty without context.</param>
public sealed record RenderedPrompt(string Text, IReadOnlyList<(int Start, int End)> PassageRanges);

/// <summary>
/// How passages and the question become a prompt. The default is MIRAGE's (ALCE's) style,
/// <c>Document [i](Title: t): text</c>. The no-context prompt is the same template with the
/// <c>{passages}</c> placeholder and the whitespace right after it removed.
/// </summary>
public sealed record PromptTemplate
{
    /// <summary>ALCE's instruction, used by MIRAGE's experiments.</summary>
    public const string DefaultInstruction = "Write an accurate, engaging, and concise answer for the given question using only the provided search results and cite them properly.";

    /// <summary>The instruction that fills <c>{instruction}</c>.</summary>
    public string Instruction { get; init; } = DefaultInstruction;

    /// <summary>The whole prompt, with <c>{instruction}</c>, <c>{passages}</c> and <c>{question}</c>.</summary>
    /// <value>Default <c>{instruction}\n\n{passages}\n\nQuestion: {question}\nAnswer:</c>.</value>
    public string Template { get; init; } = "{instruction}\n\n{passages}\n\nQuestion: {question}\nAnswer:";

    /// <summary>One passage with a title: <c>{index}</c> (1-based), <c>{title}</c>, <c>{text}</c>.</summary>
    public string PassageTemplate { get; init; } = "Document [{index}](Title: {title}): {text}";

    /// <summary>One passage without a title.</summary>
    public string UntitledPassageTemplate { get; init; } = "Document [{index}]: {text}";

    /// <summary>Between passages.</summary>
    public string PassageSeparator { get; init; } = "\n";

    /// <summary>Throws when a placeholder the renderer needs is missing or repeated.</summary>
    public void Validate()
    {
        foreach (var placeholder in new[] { "{passages}", "{question}" })
        {
            int count = (Template.Length - Template.Replace(placeholder, "").Length) / placeholder.Length;
            if (count != 1)
                throw new MirageException($"The prompt template must contain {placeholder} exactly once (found {count}).");
        }
        if (!PassageTemplate.Contains("{text}") || !UntitledPassageTemplate.Contains("{text}"))
            throw new MirageException("Passage templates must contain {text}.");
    }

    /// <summary>Renders the prompt with the passages (<paramref name="withContext"/>) or without them.</summary>
    public RenderedPrompt Render(string question, IReadOnlyList<Passage> passages, bool withContext)
    {
        var template = Template.Replace("{instruction}", Instruction);
        int at = template.IndexOf("{passages}", StringComparison.Ordinal);
        var before = template[..at];
        var after = template[(at + "{passages}".Length)..];
        if (!withContext)
            return new RenderedPrompt(before + after.TrimStart().Replace("{question}", question), []);

        var text = new StringBuilder(before);
        var ranges = new List<(int, int)>();
        for (int i = 0; i < passages.Count; i++)
        {
            if (i > 0)
                text.Append(PassageSeparator);
            int start = text.Length;
            var p = passages[i];
            var block = string.IsNullOrWhiteSpace(p.Title) ? UntitledPassageTemplate : PassageTemplate.Replace("{title}", p.Title);
            text.Append(block.Replace("{index}", (i + 1).ToString()).Replace("{text}", p.Text));
            ranges.Add((start, text.Length));
        }
        text.Append(after.Replace("{question}", question));
        return new RenderedPrompt(text.ToString(), ranges);
    }
}
