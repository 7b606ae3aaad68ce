using System.Diagnostics;
using Mirage.Core.Flow;
using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Benchmarks;

/// <summary>
/// The cost of information-flow routes on the 135M shape against one ordinary forward pass over the
/// same tokens: the decomposed pass alone, the routes graph of one answer token, and of a
/// sentence's tokens, each with the peak memory it adds above the loaded model. The weights are
/// random, so contributions are more even than a trained model's and more nodes pass the threshold:
/// a pessimistic case for the top-down search.
/// </summary>
internal static class RoutesBenchmark
{
    public static void Run(string checkpoint, int tokens, int sentenceTokens, int answerTokens, int repeats)
    {
        using var model = LanguageModel.Load(checkpoint, new ComputeOptions { DType = ScalarType.Float32, Engine = ModelEngine.Torch });
        var random = new Random(7);
        int[] ids = [.. Enumerable.Range(0, tokens).Select(_ => random.Next(300, model.Config.VocabSize))];
        int[] sentence = [.. Enumerable.Range(tokens - sentenceTokens, sentenceTokens)];
        int[] answer = [.. Enumerable.Range(tokens - answerTokens, answerTokens)];

        var rows = new List<(string Name, double Seconds, long PeakBytes)>
        {
            Measure("forward pass", repeats, () => Forward(model, ids)),
            Measure("decomposed forward pass", repeats, () =>
            {
                using var scope = NewDisposeScope();
                using var _ = model.Decompose(ids);
            }),
            Measure("routes of 1 token", repeats, () => RouteTracer.Trace(model, ids, [tokens - 1])),
            Measure($"routes of {sentenceTokens} tokens (a sentence)", repeats, () => RouteTracer.Trace(model, ids, sentence)),
            Measure($"routes of {answerTokens} tokens (an answer)", repeats, () => RouteTracer.Trace(model, ids, answer)),
        };
        Console.WriteLine();
        Console.WriteLine($"135M-shaped Llama (random weights), float32, {tokens} tokens, {get_num_threads()} torch threads, {ConsumerBenchmark.CpuName()}");
        Console.WriteLine("| work | seconds (median) | x forward pass | peak above the model (MiB) |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (var (name, seconds, peak) in rows)
            Console.WriteLine($"| {name} | {seconds:F2} | {seconds / rows[0].Seconds:F1} | {peak / (1024.0 * 1024):F0} |");
        // How much of the model the routes touch, which is what their cost follows.
        foreach (var (name, from) in new[] { ("1 token", new[] { tokens - 1 }), ($"{sentenceTokens} tokens", sentence), ($"{answerTokens} tokens", answer) })
        {
            var graph = RouteTracer.Trace(model, ids, from);
            Console.WriteLine($"routes of {name}: {graph.Nodes.Count} nodes, {graph.Edges.Count} edges, {graph.Nodes.Count(n => n.Kind == RouteNode.AfterAttention)} attention targets taken apart");
        }
    }

    private static void Forward(LanguageModel model, int[] ids)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        using var _ = model.Forward(new ForwardRequest(model.Embed(input), TorchScalars.Range(ids.Length).unsqueeze(0), LogitsFrom: ids.Length - 1));
    }

    private static (string, double, long) Measure(string name, int repeats, Action work)
    {
        Console.Error.WriteLine($"Timing {name} ...");
        long resident = PeakMemory.Reset();
        work();
        long peak = PeakMemory.PeakBytes() - resident;
        var times = new List<double>();
        for (int i = 0; i < Math.Max(1, repeats); i++)
        {
            var clock = Stopwatch.StartNew();
            work();
            times.Add(clock.Elapsed.TotalSeconds);
        }
        return (name, times.Order().ElementAt(times.Count / 2), peak);
    }
}
