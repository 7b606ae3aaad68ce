using LLama.Native;
using static TorchSharp.torch;

namespace Mirage.Core.Models.LlamaCpp;

/// <summary>
/// A cached sequence on llama.cpp: one context whose KV cache holds sequence 0. Appending decodes
/// the ids in micro-batches with logits asked only where they are read; rewinding removes the cache
/// from a position on (llama.cpp's sequence memory operations), so a shared prefix is decoded once.
/// </summary>
internal sealed class LlamaCppSequence(SafeLLamaContextHandle context, int capacity, int vocabulary, int batchSize) : ICachedSequence
{
    private static readonly LLamaSeqId Sequence = (LLamaSeqId)0;
    private readonly LLamaBatch _batch = new();

    public int Length { get; private set; }

    public int Capacity => capacity;

    public Tensor? Append(IReadOnlyList<int> ids, int? logitsFrom)
    {
        if (Length + ids.Count > capacity)
            throw new MirageException($"The sequence holds {capacity} tokens; {Length} are used and {ids.Count} more do not fit.");
        int from = logitsFrom ?? ids.Count;
        var logits = from < ids.Count ? empty([ids.Count - from, vocabulary], ScalarType.Float32) : null;
        try
        {
            for (int start = 0; start < ids.Count; start += batchSize)
            {
                int count = Math.Min(batchSize, ids.Count - start);
                _batch.Clear();
                for (int i = 0; i < count; i++)
                    _batch.Add((LLamaToken)ids[start + i], Length + start + i, Sequence, start + i >= from);
                var result = context.Decode(_batch);
                if (result != DecodeResult.Ok)
                    throw new MirageException($"llama.cpp could not decode {count} tokens at position {Length + start}: {result}.");
                if (logits is not null)
                    CopyLogits(logits, start, count, from);
            }
        }
        catch
        {
            logits?.Dispose();
            context.MemorySequenceRemove(Sequence, Length, -1);
            throw;
        }
        Length += ids.Count;
        return logits;
    }

    // Rows of the micro-batch that starts at `start` and predicts from `from` on, into the result.
    private void CopyLogits(Tensor logits, int start, int count, int from)
    {
        var memory = TensorMemory.Floats(logits);
        for (int i = Math.Max(0, from - start); i < count; i++)
            context.GetLogitsIth(i).CopyTo(memory.Slice((start + i - from) * vocabulary, vocabulary));
    }

    public void Rewind(int length)
    {
        if (length < 0 || length > Length)
            throw new ArgumentOutOfRangeException(nameof(length), $"The sequence holds {Length} tokens; it cannot be rewound to {length}.");
        context.MemorySequenceRemove(Sequence, length, -1);
        Length = length;
    }

    public void Dispose() => context.Dispose();
}
