using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// What a generation computed that citing its answer would compute again: the sequence holding the
/// prompt's KV cache (on the model's engine) and, per generated token, the logits it was drawn from. Kept with
/// <see cref="GenerationOptions.KeepTrace"/>; a citation of the answer
/// (<c>CitationRequest.Trace</c>) then skips its forward pass over prompt and answer. Dispose it
/// once the answer is cited.
/// </summary>
public sealed class GenerationTrace : IDisposable
{
    private readonly ICachedSequence _sequence;
    private bool _sequenceTaken;

    internal GenerationTrace(IReadOnlyList<int> promptIds, IReadOnlyList<int> tokenIds, ICachedSequence sequence, Tensor logits)
    {
        PromptIds = promptIds;
        TokenIds = tokenIds;
        _sequence = sequence;
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
    /// The sequence holding the prompt in its first slots, lent out once (the trace still disposes
    /// it): its borrower overwrites slots, so a second citation of the same trace runs its own pass.
    /// </summary>
    internal ICachedSequence? BorrowSequence()
    {
        if (_sequenceTaken)
            return null;
        _sequenceTaken = true;
        return _sequence;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _sequence.Dispose();
        Logits.Dispose();
    }
}
