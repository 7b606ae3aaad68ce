using System.Diagnostics;
using Mirage.Core.Models;
using Mirage.Core.Models.Gguf;

namespace Mirage.Benchmarks;

/// <summary>
/// GGUF loading: load time and peak memory of the 135M-parameter Llama shape as safetensors and as
/// GGUF F32 and Q4_K_M (quantized by llama.cpp) files, on TorchSharp (dequantized, float32) and on
/// llama.cpp, each loaded in a fresh process, and dequantization throughput.
/// </summary>
internal static class GgufBenchmark
{
    public static void Run(string checkpoint, int repeats)
    {
        var work = Path.Combine(Path.GetTempPath(), "mirage-bench-gguf");
        Directory.CreateDirectory(work);
        var f32 = Path.Combine(work, "model-f32.gguf");
        var q4 = Path.Combine(work, "model-Q4_K_M.gguf");
        var clock = Stopwatch.StartNew();
        GgufConverter.FromHuggingFace(checkpoint, f32);
        Console.WriteLine($"converted to GGUF F32 in {clock.Elapsed.TotalSeconds:F1} s ({new FileInfo(f32).Length / 1048576.0:F0} MiB)");
        LLama.Native.NativeApi.llama_empty_call();
        if (!LLama.LLamaQuantizer.Quantize(f32, q4, "Q4_K_M", nthread: Environment.ProcessorCount))
            throw new InvalidOperationException("llama.cpp could not quantize the model.");
        Console.WriteLine($"llama.cpp Q4_K_M: {new FileInfo(q4).Length / 1048576.0:F0} MiB");

        Console.WriteLine();
        Console.WriteLine("| source | engine | file MiB | load s (median) | peak RSS MiB |");
        Console.WriteLine("|---|---|---:|---:|---:|");
        foreach (var (name, path, engine) in new[] { ("safetensors F32", checkpoint, "torch"), ("GGUF F32", f32, "torch"), ("GGUF F32", f32, "llama.cpp"), ("GGUF Q4_K_M", q4, "torch"), ("GGUF Q4_K_M", q4, "llama.cpp") })
        {
            var runs = Enumerable.Range(0, repeats).Select(_ => MeasureLoad(path, engine)).ToList();
            long size = Directory.Exists(path) ? Directory.GetFiles(path).Sum(f => new FileInfo(f).Length) : new FileInfo(path).Length;
            Console.WriteLine($"| {name} | {engine} | {size / 1048576.0:F0} | {runs.Select(r => r.Seconds).Order().ElementAt(runs.Count / 2):F2} | {runs.Max(r => r.PeakBytes) / 1048576.0:F0} |");
        }

        using var file = GgufFile.Open(q4);
        Console.WriteLine();
        Console.WriteLine("| type | tensors | input MB | output MB | s | output GB/s |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        foreach (var group in file.Tensors.Where(t => t.Type is not GgufType.F32).GroupBy(t => t.Type))
        {
            long input = group.Sum(t => t.ByteLength), output = group.Sum(t => t.ElementCount * 4);
            // As the loader does: straight into a float32 tensor's memory.
            file.Dequantize(group.First(), TorchSharp.torch.ScalarType.Float32).Dispose();
            clock.Restart();
            for (int r = 0; r < repeats; r++)
                foreach (var tensor in group)
                    file.Dequantize(tensor, TorchSharp.torch.ScalarType.Float32).Dispose();
            double seconds = clock.Elapsed.TotalSeconds / repeats;
            Console.WriteLine($"| {group.Key} | {group.Count()} | {input / 1e6:F1} | {output / 1e6:F1} | {seconds:F3} | {output / 1e9 / seconds:F2} |");
        }
        Directory.Delete(work, recursive: true);
    }

    // Loads the model in a fresh process (this program with --measure-load), which reports its load time and peak resident memory.
    private static (double Seconds, long PeakBytes) MeasureLoad(string model, string engine)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
        if (Path.GetFileName(Environment.ProcessPath) is "dotnet")
            start.ArgumentList.Add(typeof(GgufBenchmark).Assembly.Location);
        start.ArgumentList.Add("--measure-load");
        start.ArgumentList.Add($"{engine}|{model}");
        using var child = Process.Start(start)!;
        var output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        var parts = output.Trim().Split(' ');
        return (double.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The child side: load <c>ENGINE|MODEL</c> (float32 on torch), then print seconds and peak resident bytes.</summary>
    public static void MeasureLoadHere(string engineAndModel)
    {
        var (engine, model) = (engineAndModel[..engineAndModel.IndexOf('|')], engineAndModel[(engineAndModel.IndexOf('|') + 1)..]);
        var clock = Stopwatch.StartNew();
        using var lm = LanguageModel.Load(model, new ComputeOptions { Engine = ModelEngines.Parse(engine), DType = TorchSharp.torch.ScalarType.Float32 });
        double seconds = clock.Elapsed.TotalSeconds;
        long peak = PeakMemory.PeakBytes();
        Console.WriteLine(FormattableString.Invariant($"{seconds} {peak}"));
    }
}
