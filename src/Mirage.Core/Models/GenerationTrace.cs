using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// What a generation computed that citing its answer would compute again: the prompt's KV cache
/// and, per generated token, the logits it was drawn from. Kept with
/// <see cref="GenerationOptions.KeepTrace"/>; a citation of the answer
/// (<c>CitationRequest.Trace</c>) then skips its forward pass over prompt and answer. Dispose it
/// once the answer is cited.
/// </summary>
public sealed class GenerationTrace : IDisposable
{
    private readonly KvCache _cache;
    private bool _cacheTaken;

    internal GenerationTrace(IReadOnlyList<int> promptIds, IReadOnlyList<int> tokenIds, KvCache cache, Tensor logits)
    {
        PromptIds = promptIds;
        TokenIds = tokenIds;
        _cache = cache;
        Logits = logits;
    }

    /// <summary>The prompt the generation continued.</summary>
    public IReadOnlyList<int> PromptIds { get; }

    /// <summary>The generated ids.</summary>
    public IReadOnlyList<int> TokenIds { get; }

    /// <summary>Row i: the logits that generated token i was drawn from, <c>[N, V]</c> (float32, float64 for float64 models).</summary>
    internal Tensor Logits { get; }

    /// <summary>Whether this generation's prompt is <paramref name="prompt"/> and its tokens begin with <paramref name="answer"/>.</summary>
    internal bool Covers(IReadOnlyList<int> prompt, IReadOnlyList<int> answer) =>
        PromptIds.SequenceEqual(prompt) && answer.Count <= TokenIds.Count && TokenIds.Take(answer.Count).SequenceEqual(answer);

    /// <summary>
    /// The KV cache holding the prompt in its first slots, lent out once (the trace still disposes
    /// it): its borrower overwrites slots, so a second citation of the same trace runs its own pass.
    /// </summary>
    internal KvCache? BorrowCache()
    {
        if (_cacheTaken)
            return null;
        _cacheTaken = true;
        return _cache;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _cache.Dispose();
        Logits.Dispose();
    }
}
