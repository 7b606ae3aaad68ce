namespace Mirage.Core.Tokenization;

/// <summary>
/// A conversation as prompt ids for generation: through the model's chat template (which writes
/// its own BOS, and ends with the assistant's turn opened), or, for a model without one, the
/// messages' text joined by newlines after the tokenizer's BOS.
/// </summary>
public static class ConversationPrompt
{
    /// <summary>The prompt ids for <paramref name="messages"/>; <paramref name="cancellationToken"/> stops a slow template.</summary>
    public static int[] Encode(TextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (messages is null || messages.Count == 0)
            throw new MirageException("The conversation is empty; send at least one message.");
        return tokenizer.ChatTemplate is { } template
            ? tokenizer.EncodeIds(template.Render(messages, cancellationToken: cancellationToken), addSpecialTokens: false)
            : tokenizer.EncodeIds(string.Join("\n", messages.Select(m => m.Content)));
    }
}
