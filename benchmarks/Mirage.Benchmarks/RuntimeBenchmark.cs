using System.Diagnostics;
using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Benchmarks;

/// <summary>One model in one dtype: teacher-forced forward throughput and KV-cache generation speed.</summary>
internal sealed record RuntimeMeasurement(string Model, string DType, long Parameters, int ForwardTokens, int ScoredTokens, double ForwardTokensPerSecond, double ForwardGflops, int PromptTokens, int GeneratedTokens, double PrefillSeconds, double DecodeTokensPerSecond);

internal static class RuntimeBenchmark
{
    /// <summary>Forward throughput, prefill time and decoding speed of the model in <paramref name="directory"/> at <paramref name="dtype"/>, each the median of <paramref name="repeats"/> runs.</summary>
    /// <param name="directory">The checkpoint folder.</param>
    /// <param name="dtype">The compute dtype.</param>
    /// <param name="forwardTokens">Tokens in the timed forward pass.</param>
    /// <param name="scoredTokens">How many of the forward tokens are the scored continuation (the rest is prompt), as when citing an answer.</param>
    /// <param name="promptTokens">Prompt length for the generation timing.</param>
    /// <param name="generatedTokens">Tokens generated after it.</param>
    /// <param name="repeats">Runs per measurement.</param>
    public static RuntimeMeasurement Measure(string directory, ScalarType dtype, int forwardTokens, int scoredTokens, int promptTokens, int generatedTokens, int repeats)
    {
        using var model = LanguageModel.Load(directory, new ComputeOptions { DType = dtype });
        forwardTokens = Math.Min(forwardTokens, model.ContextLength - 1);
        promptTokens = Math.Min(promptTokens, model.ContextLength - generatedTokens - 1);
        var random = new Random(17);
        int[] Ids(int n) => Enumerable.Range(0, n).Select(_ => random.Next(3, model.Config.VocabSize)).ToArray();

        var ids = Ids(forwardTokens);
        int split = Math.Max(1, forwardTokens - scoredTokens);
        model.ScoreContinuation(ids[..split], ids[split..]); // warm-up
        var clock = Stopwatch.StartNew();
        for (int r = 0; r < repeats; r++)
            model.ScoreContinuation(ids[..split], ids[split..]);
        double forwardSeconds = clock.Elapsed.TotalSeconds / repeats;

        var prompt = Ids(promptTokens);
        var options = new GenerationOptions { MaxTokens = generatedTokens, StopAtEos = false };
        model.Generate(prompt, options with { MaxTokens = 2 }); // warm-up
        var results = Enumerable.Range(0, repeats).Select(_ => model.Generate(prompt, options)).ToList();
        double prefill = results.Average(r => r.PrefillTime.TotalSeconds);
        double decode = results.Average(r => r.DecodeTime.TotalSeconds);
        int decoded = results[0].TokenIds.Count - 1;

        return new RuntimeMeasurement(
            model.ModelId, ComputeOptions.NameOf(dtype), model.ParameterCount, forwardTokens, forwardTokens - split,
            forwardTokens / forwardSeconds,
            // 2 FLOPs per weight per token (the LM head counted for every token, as if all were scored);
            // attention's T^2 term is left out.
            2.0 * model.ParameterCount * forwardTokens / forwardSeconds / 1e9,
            promptTokens, results[0].TokenIds.Count, prefill, decoded / decode);
    }
}
