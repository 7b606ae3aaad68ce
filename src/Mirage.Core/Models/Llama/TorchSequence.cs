using static TorchSharp.torch;

namespace Mirage.Core.Models.Llama;

/// <summary>A cached sequence on the TorchSharp engine: the network's forward pass over a preallocated <see cref="KvCache"/>.</summary>
internal sealed class TorchSequence(LlamaForCausalLM network, KvCache cache, Device device) : ICachedSequence
{
    public int Length => cache.Length;

    public int Capacity => cache.Capacity;

    public Tensor? Append(IReadOnlyList<int> ids, int? logitsFrom)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray(), device: device).unsqueeze(0);      // [1, T]
        var positions = arange(Length, Length + ids.Count, device: device).unsqueeze(0);        // [1, T]
        using var output = network.Forward(new ForwardRequest(network.Embed(input), positions, Cache: cache, LogitsFrom: logitsFrom ?? ids.Count - 1));
        return logitsFrom is null ? null : output.Logits[0].MoveToOuterDisposeScope();          // [T - from, V]
    }

    public void Rewind(int length) => cache.Rewind(length);

    public void Dispose() => cache.Dispose();
}
