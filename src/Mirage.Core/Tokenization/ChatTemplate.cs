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
    public ChatTemplate(string source, TokenizerSettings settings)
    {
        _template = JinjaTemplate.Parse(source);
        _settings = settings;
    }

    /// <summary>
    /// The prompt text for <paramref name="messages"/>, as transformers' <c>apply_chat_template</c>
    /// renders it; it already holds any BOS the template writes, so encode it without adding one.
    /// </summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true) =>
        _template.Render(new Dictionary<string, object?>
        {
            ["messages"] = messages.Select(m => (object?)new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList(),
            ["add_generation_prompt"] = addGenerationPrompt,
            ["bos_token"] = _settings.BosToken ?? "",
            ["eos_token"] = _settings.EosToken ?? "",
        });
}
