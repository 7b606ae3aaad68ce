using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Mirage.Core.Models.Llama;

/// <summary>
/// Scaled dot-product attention, by one of two kernels: libtorch's fused SDPA, or explicit attention
/// (scores, softmax, weighted sum: transformers' eager attention), which alone can return the
/// weights and soft-cap the scores. SDPA is the default everywhere else: explicit attention is 1.2-2.4x
/// faster than SDPA alone in bfloat16 on this CPU up to ~900 x 900 (benchmarks: --suite attention),
/// but picking it by length and dtype gained nothing measurable in the model's own passes.
/// </summary>
internal static class AttentionKernel
{
    /// <summary>
    /// softmax(q k^T * scale, soft-capped, + mask) v over queries <c>[B, H, T, D]</c> and keys and
    /// values <c>[B, H, S, D]</c>, and with <paramref name="outputWeights"/> the weights <c>[B, H, T, S]</c>
    /// (both need <paramref name="explicitKernel"/>; its softmax accumulates in float32, or float64 in
    /// float64). Explicit attention needs the mask; SDPA takes null for plain causal attention, and no soft-cap.
    /// </summary>
    public static (Tensor Output, Tensor? Weights) Attend(Tensor q, Tensor k, Tensor v, Tensor? mask, double scale, double? softcap, bool explicitKernel, bool outputWeights = false)
    {
        if (!explicitKernel && (outputWeights || softcap is not null))
            throw new ArgumentException("Attention weights and soft-capping need the explicit kernel.", nameof(explicitKernel));
        if (!explicitKernel)
        {
            // SDPA divides by sqrt(D); another scale is folded into the queries.
            double sqrtD = Math.Sqrt(q.shape[3]);
            using var factor = (scale * sqrtD).ToScalar(); // disposed here, not left to the finalizer mid-call
            var scaled = scale == 1 / sqrtD ? q : q * factor;
            return (F.scaled_dot_product_attention(scaled, k, v, mask, is_casual: mask is null && q.shape[2] > 1), null);
        }
        ArgumentNullException.ThrowIfNull(mask);
        // The [B, H, T, S] intermediates go as soon as the weights exist (autograd keeps what it needs),
        // rather than piling up layer after layer in the caller's scope.
        using var scope = NewDisposeScope();
        using var scaleScalar = scale.ToScalar();
        var scores = q.matmul(k.transpose(-2, -1)).mul_(scaleScalar);            // [B, H, T, S]
        if (softcap is double cap)
        {
            using var capScalar = cap.ToScalar();
            scores = (scores / capScalar).tanh() * capScalar;                    // before the mask, as Gemma 2 (tanh keeps its output for backward)
        }
        var weights = scores.PlusInPlace(mask).softmax(-1, Precision.Accumulate(q.dtype)).to(q.dtype);
        var output = weights.matmul(v);                                          // [B, H, T, D]
        return (output.MoveToOuterDisposeScope(), outputWeights ? weights.MoveToOuterDisposeScope() : null);
    }
}
