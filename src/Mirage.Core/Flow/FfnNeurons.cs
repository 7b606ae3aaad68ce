using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Flow;

/// <summary>A neuron of an FFN block, its contribution to the residual stream after the block, and the tokens its output promotes.</summary>
public sealed record NeuronContribution(int Neuron, double Contribution, IReadOnlyList<LensToken> Promotes);

/// <summary>
/// An FFN block taken apart by neuron (LM-TT's per-neuron view): each neuron's output
/// <c>a_i W_down[:, i]</c> is a part of the residual after the block, with the residual before it as
/// one more part, and contributes by the same proximity rule as attention heads
/// (<see cref="Contributions"/>).
/// </summary>
public static class FfnNeurons
{
    /// <summary>
    /// The <paramref name="k"/> neurons of layer <paramref name="layer"/>'s FFN block at
    /// <paramref name="position"/> that contribute most, from the pass's <paramref name="decomposition"/>
    /// of that layer, with the <paramref name="promotions"/> tokens each promotes most.
    /// </summary>
    public static IReadOnlyList<NeuronContribution> Top(LanguageModel model, LayerDecomposition decomposition, int layer, int position, int k = 5, int promotions = 3)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (neurons, _) = model.FfnNeurons(layer, decomposition, position);                                          // [I, C]
        var (shares, _) = Contributions.WithResidual(neurons, decomposition.ResidualMid[0, position].to(neurons.dtype), decomposition.ResidualPost[0, position].to(neurons.dtype)); // [I]
        var (top, index) = shares.topk(Math.Clamp(k, 1, (int)shares.shape[0]));
        var values = top.to(ScalarType.Float64).cpu().data<double>().ToArray();
        var ids = index.cpu().data<long>().ToArray();
        return [.. ids.Select((i, n) => new NeuronContribution((int)i, values[n], LogitLens.Promote(model, neurons[i], promotions).Promoted))];
    }
}
