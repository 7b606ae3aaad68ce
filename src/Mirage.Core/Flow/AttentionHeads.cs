using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Flow;

/// <summary>An attention head, its contribution to the residual stream after the attention block, and the tokens its output promotes.</summary>
public sealed record HeadContribution(int Head, double Contribution, IReadOnlyList<LensToken> Promotes);

/// <summary>
/// An attention block taken apart by head at one position (LM-TT's per-head view): each head's
/// output there (its parts summed over the sources) is a part of the residual after the block, with
/// the residual before it as one more part, by the proximity rule of <see cref="Contributions"/>.
/// </summary>
public static class AttentionHeads
{
    /// <summary>
    /// Every head of the layer <paramref name="decomposition"/> describes, at <paramref name="position"/>,
    /// strongest first, with the <paramref name="promotions"/> tokens each promotes most.
    /// </summary>
    public static IReadOnlyList<HeadContribution> At(LanguageModel model, LayerDecomposition decomposition, int position, int promotions = 3)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var heads = decomposition.HeadOutputs(tensor(new long[] { position }, device: decomposition.Weights.device))[0, 0];     // [H, C]
        var (shares, _) = Contributions.WithResidual(heads, decomposition.ResidualPre[0, position].to(heads.dtype), decomposition.ResidualMid[0, position].to(heads.dtype)); // [H]
        var values = shares.to(ScalarType.Float64).cpu().data<double>().ToArray();
        return [.. Enumerable.Range(0, values.Length).OrderByDescending(h => values[h])
            .Select(h => new HeadContribution(h, values[h], LogitLens.Promote(model, heads[h], promotions).Promoted))];
    }
}
