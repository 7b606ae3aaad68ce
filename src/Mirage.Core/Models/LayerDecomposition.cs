using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// One decoder layer of a forward pass taken apart, for information-flow routes (LM-TT's
/// decomposition): the residual stream before the layer, after its attention block and after its
/// FFN block, and the attention block in factors from which its output at any target position
/// splits by head and source token (<see cref="AttentionParts"/>). The factors cost
/// <c>H x T x T + T x C</c> numbers; the split itself, <c>P x S x H x C</c>, is made only for the
/// targets asked for. The parts add up to the whole (up to float rounding):
/// <c>ResidualPre[:, P] + AttentionParts(P).sum(S, H) + AttentionRest(P) = ResidualMid[:, P]</c>
/// and <c>ResidualMid + FfnOutput = ResidualPost</c>. With sandwich norms (Gemma 2) the block's
/// output norm is folded into the parts: its per-position scale is taken from the whole output.
/// </summary>
/// <param name="ResidualPre">The residual stream entering the layer, <c>[B, T, C]</c>.</param>
/// <param name="ResidualMid">After the attention block, <c>[B, T, C]</c>.</param>
/// <param name="ResidualPost">After the FFN block (the layer's output), <c>[B, T, C]</c>.</param>
/// <param name="FfnOutput">The FFN block's output added to the residual, <c>[B, T, C]</c>.</param>
/// <param name="Weights">The attention weights, <c>[B, H, T, S]</c> (the sources are the pass's own tokens).</param>
/// <param name="Values">Each head's value of each source, <c>[B, H, S, D]</c> (key-value heads repeated).</param>
/// <param name="Output">The output projection per head, <c>[H, D, C]</c> (a view of the model's weight).</param>
/// <param name="OutputBias">The output projection's bias, <c>[C]</c>, where the family has one.</param>
/// <param name="OutputScale">The sandwich norm's scale of the attention output, <c>[B, T, C]</c>, where the family has one.</param>
public sealed record LayerDecomposition(
    Tensor ResidualPre,
    Tensor ResidualMid,
    Tensor ResidualPost,
    Tensor FfnOutput,
    Tensor Weights,
    Tensor Values,
    Tensor Output,
    Tensor? OutputBias,
    Tensor? OutputScale) : IDisposable
{
    /// <summary>What each head writes from each source, <c>[B, H, S, C]</c>: <c>v_s W_O^h</c>, before the attention weights.</summary>
    public Tensor HeadValues() => einsum("bhsd,hdc->bhsc", Values.to(Output.dtype), Output);

    /// <summary>
    /// What each head moved from each source token to each target in <paramref name="positions"/>
    /// (<c>[P]</c>, int64), <c>[B, P, S, H, C]</c>: <c>A[h, p, s] * (v_s W_O^h)</c>, from
    /// <paramref name="headValues"/> (<see cref="HeadValues"/>, computed once per layer); with
    /// <paramref name="scaled"/> false, before a sandwich norm's scale (what the norm's input holds).
    /// </summary>
    public Tensor AttentionParts(Tensor headValues, Tensor positions, bool scaled = true)
    {
        var a = Weights.index_select(2, positions).to(headValues.dtype);                 // [B, H, P, S]
        var parts = einsum("bhps,bhsc->bpshc", a, headValues);                             // [B, P, S, H, C]
        return OutputScale is null || !scaled ? parts : parts * OutputScale.index_select(1, positions).unsqueeze(2).unsqueeze(2).to(parts.dtype);
    }

    /// <summary>
    /// Each head's output at <paramref name="positions"/> (<c>[P]</c>, int64), <c>[B, P, H, C]</c>:
    /// <see cref="AttentionParts"/> summed over the sources, computed as <c>(A[h, p, :] V_h) W_O^h</c>
    /// without any per-source part (so without <see cref="HeadValues"/>).
    /// </summary>
    public Tensor HeadOutputs(Tensor positions)
    {
        using var scope = NewDisposeScope();
        var mixed = Weights.index_select(2, positions).to(Output.dtype).matmul(Values.to(Output.dtype));   // [B, H, P, D]
        var heads = einsum("bhpd,hdc->bphc", mixed, Output);                                               // [B, P, H, C]
        return (OutputScale is null ? heads : heads * OutputScale.index_select(1, positions).unsqueeze(2).to(heads.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// How far each attention part at <paramref name="positions"/> (as <see cref="AttentionParts"/>
    /// gives them) is from one vector per target: <c>||whole[p] - part[p, s, h]||_1</c>, <c>[B, P, S, H]</c>,
    /// for <paramref name="whole"/> <c>[B, P, C]</c>. <paramref name="headValues"/> may hold only the
    /// first S sources (no target attends to a later one). The parts are built in place in
    /// <paramref name="workspace"/>, a flat tensor of at least <c>B x P x S x H x C</c> elements of the
    /// head values' dtype that the caller reuses: fresh tens of MiB per call cost more than the arithmetic.
    /// </summary>
    public Tensor AttentionPartDistances(Tensor headValues, Tensor positions, Tensor whole, Tensor workspace)
    {
        using var scope = NewDisposeScope();
        long b = headValues.shape[0], h = headValues.shape[1], s = headValues.shape[2], c = headValues.shape[3], p = positions.shape[0];
        var a = Weights.index_select(2, positions).narrow(3, 0, s).to(headValues.dtype).permute(0, 2, 3, 1).unsqueeze(-1); // [B, P, S, H, 1]
        var values = headValues.permute(0, 2, 1, 3).unsqueeze(1);                                                 // [B, 1, S, H, C]
        var target = whole.to(headValues.dtype).unsqueeze(2).unsqueeze(2);                                         // [B, P, 1, 1, C]
        var difference = workspace.narrow(0, 0, b * p * s * h * c).view(b, p, s, h, c);
        if (OutputScale is null)
            difference.copy_(target.expand(b, p, s, h, c)).addcmul_(a, values, TorchScalars.MinusOne);
        else
            difference.copy_(values.expand(b, p, s, h, c)).mul_(OutputScale.index_select(1, positions).to(headValues.dtype).unsqueeze(2).unsqueeze(2))
                .mul_(a).neg_().add_(target, TorchScalars.One);
        return difference.abs_().sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>What no head and source accounts for at <paramref name="positions"/> (the output projection's bias), <c>[B, P, C]</c>.</summary>
    public Tensor AttentionRest(Tensor positions)
    {
        long b = ResidualPre.shape[0], p = positions.shape[0], c = ResidualPre.shape[2];
        if (OutputBias is null)
            return zeros([b, p, c], ResidualPre.dtype, ResidualPre.device);
        var rest = OutputBias.to(ResidualPre.dtype).expand(b, p, c);
        return OutputScale is null ? rest.clone() : rest * OutputScale.index_select(1, positions).to(rest.dtype);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in Tensors())
            t.Dispose();
    }

    /// <summary>Every tensor of the decomposition, for moving them out of a dispose scope together.</summary>
    internal IEnumerable<Tensor> Tensors() => new Tensor?[] { ResidualPre, ResidualMid, ResidualPost, FfnOutput, Weights, Values, Output, OutputBias, OutputScale }.OfType<Tensor>();
}
