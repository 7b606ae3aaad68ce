using System.Text;
using System.Text.Json.Serialization;
using Mirage.Core.Tokenization;

namespace Mirage.Core.Citations;

/// <summary>Whether the prompt goes through the model's chat template.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<PromptFormat>))]
public enum PromptFormat
{
    /// <summary>The chat template when the model has one, else plain text (default).</summary>
    Auto,
    /// <summary>Plain text from <see cref="PromptTemplate.Template"/>.</summary>
    Plain,
    /// <summary>The model's chat template around <see cref="PromptTemplate.ChatTemplate"/>; an error if the model has none.</summary>
    Chat,
}

/// <summary>How the no-context prompt is made from the prompt's layout.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<NoContextRule>))]
public enum NoContextRule
{
    /// <summary>Remove the <c>{passages}</c> block only, keeping the text around it as written (as MIRAGE's code does, docs/algorithms.md; default).</summary>
    Literal,
    /// <summary>Remove the block and the whitespace right after it (Mirage's rule before this option).</summary>
    Trim,
}

/// <summary>Where one passage sits in a rendered prompt (UTF-16 offsets).</summary>
/// <param name="Start">Start of its block, header ("Document [1](Title: ...): ") included.</param>
/// <param name="End">End of its block.</param>
/// <param name="TextStart">Start of the passage's own text inside the block.</param>
/// <param name="TextEnd">End of the passage's own text.</param>
public readonly record struct PassageRange(int Start, int End, int TextStart, int TextEnd)
{
    /// <summary>The range moved by <paramref name="offset"/> characters.</summary>
    public PassageRange Shift(int offset) => new(Start + offset, End + offset, TextStart + offset, TextEnd + offset);
}

/// <summary>A rendered prompt and where each passage sits in it.</summary>
/// <param name="Text">The prompt text.</param>
/// <param name="PassageRanges">Per passage, its block and text; empty without context.</param>
/// <param name="IsChat">Rendered through a chat template: it carries its own special tokens, and the answer follows directly.</param>
public sealed record RenderedPrompt(string Text, IReadOnlyList<PassageRange> PassageRanges, bool IsChat = false);

/// <summary>
/// How passages and the question become a prompt. The default is MIRAGE's (ALCE's) style,
/// <c>Document [i](Title: t): text</c>. The no-context prompt is the same template without the
/// <c>{passages}</c> block (see <see cref="NoContext"/>).
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

    /// <summary>Plain text, the model's chat template, or the chat template when there is one.</summary>
    /// <value>Default <see cref="PromptFormat.Auto"/>.</value>
    public PromptFormat Format { get; init; } = PromptFormat.Auto;

    /// <summary>The user message given to a chat template, with the same placeholders as <see cref="Template"/>.</summary>
    /// <value>Default <c>{instruction}\n\n{passages}\n\nQuestion: {question}</c>.</value>
    public string ChatTemplate { get; init; } = "{instruction}\n\n{passages}\n\nQuestion: {question}";

    /// <summary>How the no-context prompt drops the passages.</summary>
    /// <value>Default <see cref="NoContextRule.Literal"/>, the reference implementation's, so published numbers compare.</value>
    public NoContextRule NoContext { get; init; } = NoContextRule.Literal;

    /// <summary>Throws when a placeholder the renderer needs is missing or repeated.</summary>
    public void Validate()
    {
        foreach (var (name, template) in new[] { ("prompt template", Template), ("chat user template", ChatTemplate) })
        foreach (var placeholder in new[] { "{passages}", "{question}" })
        {
            int count = (template.Length - template.Replace(placeholder, "").Length) / placeholder.Length;
            if (count != 1)
                throw new MirageException($"The {name} must contain {placeholder} exactly once (found {count}).");
        }
        if (!PassageTemplate.Contains("{text}") || !UntitledPassageTemplate.Contains("{text}"))
            throw new MirageException("Passage templates must contain {text}.");
    }

    /// <summary>
    /// Renders the prompt with the passages (<paramref name="withContext"/>) or without them,
    /// through <paramref name="chat"/> (the model's chat template) when <see cref="Format"/> asks for it.
    /// </summary>
    public RenderedPrompt Render(string question, IReadOnlyList<Passage> passages, bool withContext, ChatTemplate? chat = null, CancellationToken cancellationToken = default)
    {
        if (Format == PromptFormat.Chat && chat is null)
            throw new MirageException("PromptFormat.Chat was asked for, but the model has no chat template; use Auto or Plain.");
        if (Format == PromptFormat.Plain || chat is null)
            return RenderText(Template, question, passages, withContext);

        // The user message is placed verbatim by the template, so passage offsets shift by where it lands.
        var user = RenderText(ChatTemplate, question, passages, withContext);
        var text = chat.Render([new ChatMessage("user", user.Text)], cancellationToken: cancellationToken);
        int at = text.IndexOf(user.Text, StringComparison.Ordinal);
        if (at < 0)
            throw new MirageException("The model's chat template changed the user message's text, so passage positions cannot be located; use PromptFormat.Plain.");
        return new RenderedPrompt(text, user.PassageRanges.Select(r => r.Shift(at)).ToList(), IsChat: true);
    }

    private RenderedPrompt RenderText(string layout, string question, IReadOnlyList<Passage> passages, bool withContext)
    {
        int at = layout.IndexOf("{passages}", StringComparison.Ordinal);
        var before = Fill(layout[..at], ("{instruction}", Instruction), ("{question}", question));
        var after = Fill(layout[(at + "{passages}".Length)..], ("{instruction}", Instruction), ("{question}", question));
        if (!withContext)
            return new RenderedPrompt(before + (NoContext == NoContextRule.Trim ? after.TrimStart() : after), []);

        var text = new StringBuilder(before);
        var ranges = new List<PassageRange>();
        for (int i = 0; i < passages.Count; i++)
        {
            if (i > 0)
                text.Append(PassageSeparator);
            int start = text.Length;
            var p = passages[i];
            var index = (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            int textStart = string.IsNullOrWhiteSpace(p.Title)
                ? Append(text, UntitledPassageTemplate, ("{index}", index), ("{text}", p.Text))
                : Append(text, PassageTemplate, ("{index}", index), ("{title}", p.Title), ("{text}", p.Text));
            ranges.Add(new PassageRange(start, text.Length, textStart, textStart + p.Text.Length));
        }
        text.Append(after);
        return new RenderedPrompt(text.ToString(), ranges);
    }

    /// <summary>
    /// Substitutes placeholders in one pass over <paramref name="template"/>: a substituted value is
    /// never searched again, so a title or question holding "{text}" stays as written (replacing one
    /// placeholder after another would copy the passage into it, and a hostile title could multiply
    /// a prompt's size).
    /// </summary>
    internal static string Fill(string template, params (string Placeholder, string Value)[] values)
    {
        var text = new StringBuilder(template.Length);
        Append(text, template, values);
        return text.ToString();
    }

    // Appends the filled template; returns where the last placeholder's value starts in text (-1 if absent).
    private static int Append(StringBuilder text, string template, params (string Placeholder, string Value)[] values)
    {
        int last = -1, i = 0;
        while (i < template.Length)
        {
            int next = template.IndexOf('{', i);
            if (next < 0)
                break;
            text.Append(template, i, next - i);
            var match = values.FirstOrDefault(v => string.CompareOrdinal(template, next, v.Placeholder, 0, v.Placeholder.Length) == 0);
            if (match.Placeholder is null)
            {
                text.Append('{');
                i = next + 1;
                continue;
            }
            if (match.Placeholder == values[^1].Placeholder)
                last = text.Length;
            text.Append(match.Value);
            i = next + match.Placeholder.Length;
        }
        text.Append(template, i, template.Length - i);
        return last;
    }
}
