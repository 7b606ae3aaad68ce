using static TorchSharp.torch;

namespace Mirage.Core.Models.Llama;

/// <summary>
/// A cached sequence on the TorchSharp engine: the network's forward pass over a preallocated
/// <see cref="KvCache"/>. Long inputs run in chunks through the cache (as llama.cpp runs micro-batches):
/// the same numbers up to float reordering, with each layer's intermediates sized by the chunk, not the prompt.
/// </summary>
internal sealed class TorchSequence(LlamaForCausalLM network, KvCache cache, Device device) : ICachedSequence
{
    // Measured on a 0.5B model citing a 920-token input: peak memory 0.25 GB lower than one chunk, no slower.
    private const int ChunkTokens = 256;

    public int Length => cache.Length;

    public int Capacity => cache.Capacity;

    public Tensor? Append(IReadOnlyList<int> ids, int? logitsFrom)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int from = logitsFrom ?? ids.Count - 1;
        var parts = new List<Tensor>();
        for (int start = 0; start < ids.Count; start += ChunkTokens)
        {
            using var chunkScope = NewDisposeScope();
            int count = Math.Min(ChunkTokens, ids.Count - start);
            var input = tensor(ids.Skip(start).Take(count).Select(i => (long)i).ToArray(), device: device).unsqueeze(0); // [1, T]
            var positions = TorchScalars.Range(Length, Length + count, device).unsqueeze(0);                              // [1, T]
            // A chunk before the first scored position only fills the cache (its head runs on one position).
            bool scored = logitsFrom is not null && start + count > from;
            using var output = network.Forward(new ForwardRequest(network.Embed(input), positions, Cache: cache, LogitsFrom: scored ? Math.Max(0, from - start) : count - 1));
            if (scored)
                parts.Add(output.Logits[0].MoveToOuterDisposeScope());
        }
        return logitsFrom is null ? null : (parts.Count == 1 ? parts[0] : cat(parts, 0)).MoveToOuterDisposeScope(); // [T - from, V]
    }

    public void Rewind(int length) => cache.Rewind(length);

    public void Dispose() => cache.Dispose();
}
