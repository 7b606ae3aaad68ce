using Mirage.Core.Models;
using Mirage.Core.Models.Llama;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Models;

/// <summary>The two attention kernels compute the same attention.</summary>
public sealed class AttentionKernelTests
{
    [Theory]
    [InlineData(12, 0)]  // a fresh causal pass: SDPA takes no mask, explicit attention the built one
    [InlineData(5, 9)]   // a suffix after cached slots, as ablation and chunked prefill run
    [InlineData(1, 13)]  // one decoded token
    public void ExplicitAttention_EqualsSdpa(int queries, int cached)
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        int keys = cached + queries;
        var q = randn(2, 4, queries, 8, ScalarType.Float64);
        var k = randn(2, 4, keys, 8, ScalarType.Float64);
        var v = randn(2, 4, keys, 8, ScalarType.Float64);
        var mask = AttentionMask.Build(zeros(2, queries, 1, ScalarType.Float64), cached, null, null);
        // A scale other than 1/sqrt(D), as Gemma's query_pre_attn_scalar gives, exercises SDPA's folded scale.
        double scale = 0.3;

        var (fused, none) = AttentionKernel.Attend(q, k, v, cached == 0 ? null : mask, scale, softcap: null, explicitKernel: false);
        var (plain, weights) = AttentionKernel.Attend(q, k, v, mask, scale, softcap: null, explicitKernel: true, outputWeights: true);

        Assert.Null(none);
        Assert.True((fused - plain).abs().max().item<double>() < 1e-12);
        Assert.True(weights!.sum(-1).sub(TorchScalars.One).abs().max().item<double>() < 1e-12);
        // Causal: no weight on a key after the query's own slot.
        for (int t = 0; t < queries; t++)
            Assert.Equal(0.0, weights[.., .., t, (cached + t + 1)..].abs().sum().item<double>());
    }

    [Fact]
    public void ExplicitAttention_InBFloat16_StaysCloseToFloat64()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var (q, k, v) = (randn(1, 9, 64, 64, ScalarType.Float64), randn(1, 9, 64, 64, ScalarType.Float64), randn(1, 9, 64, 64, ScalarType.Float64));
        var mask = AttentionMask.Build(zeros(1, 64, 1, ScalarType.BFloat16), 0, null, null);
        var (exact, _) = AttentionKernel.Attend(q, k, v, null, 0.125, softcap: null, explicitKernel: false);
        var (fast, _) = AttentionKernel.Attend(q.to(ScalarType.BFloat16), k.to(ScalarType.BFloat16), v.to(ScalarType.BFloat16), mask, 0.125, softcap: null, explicitKernel: true, outputWeights: true);
        // bfloat16 keeps 8 bits of mantissa; the softmax accumulates in float32.
        Assert.True((fast.to(ScalarType.Float64) - exact).abs().max().item<double>() < 0.05);
    }
}
