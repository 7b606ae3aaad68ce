using System.Diagnostics;
using Mirage.Core.Models;
using Mirage.Core.Training;
using Mirage.Eval.Reader;
using static TorchSharp.torch;

namespace Mirage.Benchmarks;

/// <summary>One reader-shaped model in one compute dtype: seconds per optimiser step.</summary>
internal sealed record TrainingMeasurement(int Hidden, string DType, long Parameters, int Batch, int Tokens, double SecondsPerStep, double TokensPerSecond);

/// <summary>
/// Training-step cost of reader-shaped Llamas on random tokens:
/// the float32 path against bfloat16 compute with float32 master weights.
/// </summary>
internal static class TrainingBenchmark
{
    public static TrainingMeasurement Measure(int hidden, ScalarType dtype, int batch, int tokens, int repeats)
    {
        // The reader's shape and vocabulary size (1,000 merges: 1,234 ids).
        var config = ReaderTraining.Config(new ReaderTrainingOptions { OutputDirectory = "", Hidden = hidden }, 1234, 1232, 1233);
        var random = new Random(17);
        int[] Ids(int n) => Enumerable.Range(0, n).Select(_ => random.Next(config.VocabSize)).ToArray();
        // Reader items: a long prompt (passages + question) and a short answer that carries the loss.
        var examples = Enumerable.Range(0, batch).Select(_ => new TrainingExample(Ids(tokens - 32), Ids(32))).ToList();
        using var trainer = CausalLmTrainer.Create(config, new TrainerOptions { ComputeDtype = dtype, TotalSteps = repeats + 1 });
        trainer.TrainStep(examples); // warm-up
        var clock = Stopwatch.StartNew();
        for (int r = 0; r < repeats; r++)
            trainer.TrainStep(examples);
        double seconds = clock.Elapsed.TotalSeconds / repeats;
        return new TrainingMeasurement(hidden, ComputeOptions.NameOf(dtype), trainer.ParameterCount, batch, tokens, seconds, batch * tokens / seconds);
    }
}
