using System.Diagnostics;
using Mirage.Core.Models;
using Mirage.Core.Models.Llama;
using static TorchSharp.torch;

namespace Mirage.Benchmarks;

/// <summary>
/// The attention kernels on the 135M shape (9 heads of 64): libtorch's fused SDPA against explicit
/// attention (two matmuls and a softmax in the compute dtype), by length and dtype, for a fresh
/// causal pass (forward, and forward + backward as CCI runs it) and for a cached suffix (queries
/// after a reused prefix, as ablation runs them). Whether picking the kernel by shape would pay is
/// then a question for the citation suite, which times the model's own passes.
/// </summary>
internal static class AttentionBenchmark
{
    private const int Heads = 9, HeadDim = 64;

    public static void Run(int repeats)
    {
        Console.WriteLine();
        Console.WriteLine("| dtype | pass | queries x keys | SDPA ms | explicit ms | SDPA / explicit |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|");
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        foreach (var (pass, queries, keys) in Cases())
        {
            double fused = Median(repeats, () => Time(dtype, pass, queries, keys, explicitKernel: false));
            double plain = Median(repeats, () => Time(dtype, pass, queries, keys, explicitKernel: true));
            Console.WriteLine($"| {ComputeOptions.NameOf(dtype)} | {pass} | {queries} x {keys} | {fused:F1} | {plain:F1} | {fused / plain:F2} |");
        }
    }

    private static IEnumerable<(string Pass, int Queries, int Keys)> Cases()
    {
        foreach (var length in new[] { 256, 512, 768, 896, 1024, 1536, 2048 })
        {
            yield return ("forward", length, length);
            yield return ("forward + backward", length, length);
        }
        foreach (var keys in new[] { 512, 768, 1024, 1280, 2048 })
            yield return ("cached suffix", keys / 2, keys);
        foreach (var keys in new[] { 256, 1024, 2048 })
            yield return ("decode", 1, keys);
    }

    private static double Median(int repeats, Func<double> measure)
    {
        measure();
        return Enumerable.Range(0, Math.Max(repeats, 3)).Select(_ => measure()).Order().ElementAt(Math.Max(repeats, 3) / 2);
    }

    private static double Time(ScalarType dtype, string pass, int queries, int keys, bool explicitKernel)
    {
        using var scope = NewDisposeScope();
        bool backward = pass == "forward + backward";
        var q = randn(1, Heads, queries, HeadDim, dtype: dtype).requires_grad_(backward);
        var k = randn(1, Heads, keys, HeadDim, dtype: dtype).requires_grad_(backward);
        var v = randn(1, Heads, keys, HeadDim, dtype: dtype).requires_grad_(backward);
        // SDPA runs a fresh pass as plain causal (no mask), as the model does; explicit attention always takes the mask.
        var mask = queries == keys && !explicitKernel ? null : AttentionMask.Build(empty(1, queries, 1, dtype: dtype), keys - queries, null, null);
        using var grad = backward ? null : no_grad();
        var clock = Stopwatch.StartNew();
        var (y, _) = AttentionKernel.Attend(q, k, v, mask, 1 / Math.Sqrt(HeadDim), softcap: null, explicitKernel);
        if (backward)
            y.sum().backward();
        else
            _ = y.sum().to(ScalarType.Float32).item<float>();
        return clock.Elapsed.TotalMilliseconds;
    }
}
