using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// One decoder layer of a forward pass taken apart, for information-flow routes (LM-TT's
/// decomposition): the residual stream before the layer, after its attention block and after its
/// FFN block, and the attention block's output at the chosen target positions split by head and
/// source token. The parts add up to the whole (exactly, up to float rounding):
/// <c>ResidualPre[:, P] + AttentionParts.sum(S, H) + AttentionRest = ResidualMid[:, P]</c> and
/// <c>ResidualMid + FfnOutput = ResidualPost</c>. With sandwich norms (Gemma 2) the block's output
/// norm is folded into the parts: its per-position scale is taken from the whole output.
/// </summary>
/// <param name="Positions">The target positions <c>P</c> (within this pass) the attention parts are for.</param>
/// <param name="ResidualPre">The residual stream entering the layer, <c>[B, T, C]</c>.</param>
/// <param name="ResidualMid">After the attention block, <c>[B, T, C]</c>.</param>
/// <param name="ResidualPost">After the FFN block (the layer's output), <c>[B, T, C]</c>.</param>
/// <param name="AttentionParts">What each head moved from each source token to each target, <c>[B, P, S, H, C]</c>: <c>A[h, p, s] * (v_s W_O^h)</c>.</param>
/// <param name="AttentionRest">What no head and source accounts for (the output projection's bias), <c>[B, P, C]</c>.</param>
/// <param name="FfnOutput">The FFN block's output added to the residual, <c>[B, T, C]</c>.</param>
public sealed record LayerDecomposition(
    IReadOnlyList<int> Positions,
    Tensor ResidualPre,
    Tensor ResidualMid,
    Tensor ResidualPost,
    Tensor AttentionParts,
    Tensor AttentionRest,
    Tensor FfnOutput) : IDisposable
{
    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in (Tensor[])[ResidualPre, ResidualMid, ResidualPost, AttentionParts, AttentionRest, FfnOutput])
            t.Dispose();
    }
}
