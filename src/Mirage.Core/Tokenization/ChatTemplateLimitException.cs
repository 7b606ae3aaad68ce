namespace Mirage.Core.Tokenization;

/// <summary>
/// A model's chat template went past one of the renderer's limits (nesting, loop iterations,
/// output size, time): a hostile or broken model file, refused rather than served.
/// </summary>
public sealed class ChatTemplateLimitException : MirageException
{
    /// <summary>Creates the exception; <paramref name="message"/> names the limit.</summary>
    public ChatTemplateLimitException(string message) : base(message) { }
}
