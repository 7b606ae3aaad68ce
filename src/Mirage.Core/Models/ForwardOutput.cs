using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>What one forward pass returns. The caller owns (and disposes) the tensors.</summary>
/// <param name="Logits">Next-token logits in float32 (float64 for a float64 model), <c>[B, T, V]</c> (<c>[B, T - LogitsFrom, V]</c> when only later positions were asked for).</param>
/// <param name="Attentions">Per layer, attention weights <c>[B, H, T, S]</c>; only when requested.</param>
/// <param name="HiddenStates">The embeddings and each layer's output, <c>[B, T, C]</c>; only when requested.</param>
/// <param name="Decomposition">Each layer taken apart (<see cref="ForwardRequest.Decompose"/>); only when requested.</param>
public sealed record ForwardOutput(Tensor Logits, IReadOnlyList<Tensor>? Attentions, IReadOnlyList<Tensor>? HiddenStates, IReadOnlyList<LayerDecomposition>? Decomposition = null) : IDisposable
{
    /// <inheritdoc />
    public void Dispose()
    {
        Logits.Dispose();
        foreach (var t in (Attentions ?? []).Concat(HiddenStates ?? []))
            t.Dispose();
        foreach (var layer in Decomposition ?? [])
            layer.Dispose();
    }
}
