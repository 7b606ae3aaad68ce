using Mirage.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Core.Flow;

/// <summary>
/// How much each part of a sum contributes to the whole, as the LM Transparency Tool and Ferrando
/// &amp; Voita (2024, "Information flow routes") define it: a part's proximity to the whole is
/// <c>max(eps, ||whole||_1 - ||whole - part||_1)</c>, normalised over the parts (the residual stream
/// counting as one part). A part close to the whole scores high, one that points away scores eps.
/// LM-TT computes the distance with PyTorch's <c>pairwise_distance</c>, which adds 1e-6 to each
/// difference; the plain L1 distance is used here (the two differ by at most C * 1e-6).
/// </summary>
public static class Contributions
{
    /// <summary>The floor of a part's proximity.</summary>
    public const double Epsilon = 1e-5;

    /// <summary>
    /// Contributions of <paramref name="parts"/> <c>[K..., N..., d]</c> to <paramref name="whole"/>
    /// <c>[N..., d]</c>: <c>[K..., N...]</c>, summing to 1 over the part dimensions <c>K...</c>.
    /// </summary>
    public static Tensor Of(Tensor parts, Tensor whole)
    {
        using var scope = NewDisposeScope();
        int k = (int)(parts.dim() - whole.dim());
        if (k < 0 || !parts.shape.AsSpan(k).SequenceEqual(whole.shape))
            throw new ArgumentException($"Parts [{string.Join(", ", parts.shape)}] do not end in the whole's shape [{string.Join(", ", whole.shape)}].", nameof(parts));
        var proximity = Proximity(parts, whole);                                     // [K..., N...]
        var total = proximity.sum([.. Enumerable.Range(0, k).Select(d => (long)d)], keepdim: true);
        return proximity.div(total).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Each part's proximity to the whole, <c>max(eps, ||whole||_1 - ||whole - part||_1)</c>, not yet
    /// normalised: <paramref name="parts"/> <c>[..., d]</c> against <paramref name="whole"/>, which
    /// broadcasts against them (so parts need no copy into a parts-first layout).
    /// </summary>
    public static Tensor Proximity(Tensor parts, Tensor whole)
    {
        using var scope = NewDisposeScope();
        return ProximityFromDistance(whole, parts.sub(whole).abs_().sum(-1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="Proximity"/> from distances already measured, <c>||whole - part||_1</c>
    /// (<see cref="LayerDecomposition.AttentionPartDistances"/>); <paramref name="whole"/> <c>[..., d]</c>
    /// broadcasts against <paramref name="distance"/> once d is summed away.
    /// </summary>
    public static Tensor ProximityFromDistance(Tensor whole, Tensor distance)
    {
        using var scope = NewDisposeScope();
        using var floor = Epsilon.ToScalar();
        return whole.abs().sum(-1).sub(distance).clamp_min(floor).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Contributions of <paramref name="parts"/> <c>[K..., N..., d]</c> and of the
    /// <paramref name="residual"/> <c>[N..., d]</c> (one more part) to <paramref name="whole"/>:
    /// <c>[K..., N...]</c> and <c>[N...]</c>, together summing to 1.
    /// </summary>
    public static (Tensor Parts, Tensor Residual) WithResidual(Tensor parts, Tensor residual, Tensor whole)
    {
        using var scope = NewDisposeScope();
        int k = (int)(parts.dim() - whole.dim());
        var flat = parts.flatten(0, k - 1);                                           // [K, N..., d]
        var all = Of(cat([flat, residual.unsqueeze(0)], 0), whole);                   // [K + 1, N...]
        var partShares = all.narrow(0, 0, flat.shape[0]).unflatten(0, parts.shape[..k]);
        var residualShare = all[-1];
        return (partShares.MoveToOuterDisposeScope(), residualShare.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The graphs paper's threshold: contributions at or below <paramref name="threshold"/> are dropped
    /// and the rest renormalised to sum to 1 per representation. <paramref name="residual"/> has the
    /// representation dimensions <c>[N...]</c>, a prefix of <paramref name="blocks"/>' shape.
    /// </summary>
    public static (Tensor Blocks, Tensor Residual) ThresholdAndRenormalize(double threshold, Tensor blocks, Tensor residual)
    {
        using var scope = NewDisposeScope();
        int representation = (int)residual.dim(), bound = (int)(blocks.dim() - residual.dim());
        using var limit = threshold.ToScalar();
        var keptBlocks = blocks.mul(blocks.gt(limit).to(blocks.dtype));
        var keptResidual = residual.mul(residual.gt(limit).to(residual.dtype));
        var denominator = keptBlocks.sum([.. Enumerable.Range(representation, bound).Select(d => (long)d)]).Plus(keptResidual);
        var shaped = denominator.reshape([.. denominator.shape, .. Enumerable.Repeat(1L, bound)]);
        return (keptBlocks.div(shaped).MoveToOuterDisposeScope(), keptResidual.div(denominator).MoveToOuterDisposeScope());
    }
}
