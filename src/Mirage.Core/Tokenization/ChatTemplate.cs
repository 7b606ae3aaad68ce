using Mirage.Core.Tokenization.Jinja;

namespace Mirage.Core.Tokenization;

/// <summary>One chat message.</summary>
/// <param name="Role">system, user or assistant.</param>
/// <param name="Content">The message text.</param>
public sealed record ChatMessage(string Role, string Content);

/// <summary>A model's chat template (the Jinja template in <c>tokenizer_config.json</c>), compiled.</summary>
public sealed class ChatTemplate
{
    private readonly JinjaTemplate _template;
    private readonly TokenizerSettings _settings;

    /// <summary>Compiles <paramref name="source"/>; special token strings come from <paramref name="settings"/>.</summary>
    /// <exception cref="ChatTemplateLimitException">The source is too long or nests too deep.</exception>
    /// <exception cref="MirageException">The template is malformed or uses a construct the renderer lacks.</exception>
    public ChatTemplate(string source, TokenizerSettings settings)
    {
        _template = JinjaTemplate.Parse(source);
        _settings = settings;
    }

    /// <summary>
    /// The prompt text for <paramref name="messages"/>, as transformers' <c>apply_chat_template</c>
    /// renders it; it already holds any BOS the template writes, so encode it without adding one.
    /// </summary>
    /// <exception cref="ChatTemplateLimitException">The render went past a loop, size or time limit.</exception>
    /// <exception cref="MirageException">The template refused the messages.</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, CancellationToken cancellationToken = default) =>
        _template.Render(new Dictionary<string, object?>
        {
            ["messages"] = messages.Select(m => (object?)new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList(),
            ["add_generation_prompt"] = addGenerationPrompt,
            ["bos_token"] = _settings.BosToken ?? "",
            ["eos_token"] = _settings.EosToken ?? "",
        }, cancellationToken);

    /// <summary>
    /// Renders a short conversation once, so a template that loops, grows or stalls past the
    /// renderer's limits is refused when the model loads, not on its first request. Templates may
    /// refuse a conversation on purpose (alternation rules, required roles): that is not a fault here.
    /// </summary>
    /// <exception cref="ChatTemplateLimitException">The sample render went past a limit.</exception>
    public void CheckRenders()
    {
        try
        {
            Render([new("user", "Which passage says so?"), new("assistant", "The first one."), new("user", "Thanks.")]);
        }
        catch (MirageException e) when (e is not ChatTemplateLimitException)
        {
        }
    }
}
