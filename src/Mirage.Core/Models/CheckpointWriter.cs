using System.Text.Json.Nodes;
using Mirage.Core.Models.Llama;
using Mirage.Core.Models.Safetensors;
using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>How <see cref="CheckpointWriter.WriteRandom"/> initialises and stores weights.</summary>
public sealed record RandomCheckpointOptions
{
    /// <summary>Seed for the weights.</summary>
    public long Seed { get; init; } = 1234;

    /// <summary>Standard deviation of the normal initialisation (transformers' <c>initializer_range</c>).</summary>
    public double InitStd { get; init; } = 0.02;

    /// <summary>Randomise norm weights and biases around their usual values, so tests see every weight's effect.</summary>
    public bool PerturbNormsAndBiases { get; init; }

    /// <summary>The dtype written to the file (F32, BF16, F16 or F64).</summary>
    public ScalarType FileDType { get; init; } = ScalarType.Float32;

    /// <summary>How many safetensors shards to write (more than one adds <c>model.safetensors.index.json</c>).</summary>
    public int Shards { get; init; } = 1;
}

/// <summary>Writes checkpoints in the Hugging Face layout that <see cref="LanguageModel.Load"/> reads.</summary>
public static class CheckpointWriter
{
    /// <summary>
    /// Writes <c>config.json</c> and randomly initialised weights for <paramref name="config"/>
    /// (no tokenizer: add one beside them). Used for benchmarks on real shapes and for tests.
    /// </summary>
    public static void WriteRandom(string directory, ModelConfig config, RandomCheckpointOptions? options = null)
    {
        options ??= new RandomCheckpointOptions();
        Directory.CreateDirectory(directory);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var generator = new Generator((ulong)options.Seed);
        using var model = new LlamaForCausalLM(config, ScalarType.Float32, CPU);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, parameter) in model.named_parameters())
        {
            bool isNorm = name.EndsWith("norm.weight", StringComparison.Ordinal);
            bool isBias = name.EndsWith(".bias", StringComparison.Ordinal);
            Tensor value = isNorm || isBias
                ? (isNorm ? ones(parameter.shape).Times(1 - config.NormOffset) : zeros(parameter.shape)).Plus(options.PerturbNormsAndBiases ? randn(parameter.shape, generator: generator).Times(0.1) : zeros(parameter.shape))
                : randn(parameter.shape, generator: generator).Times(options.InitStd);
            tensors.Add(new(name, value.to(options.FileDType)));
        }
        File.WriteAllText(Path.Combine(directory, "config.json"), (config with { TorchDtype = ComputeOptions.NameOf(options.FileDType) }).ToJson());
        WriteWeights(directory, config.FusedProjections ? FusedProjections.Fuse(tensors, config) : tensors, options.Shards);
    }

    /// <summary>Writes named tensors as <c>model.safetensors</c>, or as shards plus an index when <paramref name="shards"/> &gt; 1.</summary>
    public static void WriteWeights(string directory, IReadOnlyList<KeyValuePair<string, Tensor>> tensors, int shards = 1)
    {
        if (shards < 1)
            throw new MirageException($"shards must be at least 1, got {shards}.");
        if (shards == 1)
        {
            SafetensorsWriter.Write(Path.Combine(directory, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            return;
        }
        var weightMap = new JsonObject();
        var groups = tensors.Select((t, i) => (t, i)).GroupBy(x => x.i * shards / tensors.Count).ToList();
        foreach (var group in groups)
        {
            var file = $"model-{group.Key + 1:D5}-of-{shards:D5}.safetensors";
            SafetensorsWriter.Write(Path.Combine(directory, file), group.Select(x => x.t), new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var (t, _) in group)
                weightMap[t.Key] = file;
        }
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = tensors.Sum(t => t.Value.NumberOfElements * t.Value.ElementSize) },
            ["weight_map"] = weightMap,
        };
        File.WriteAllText(Path.Combine(directory, "model.safetensors.index.json"), index.ToJsonString());
    }
}
