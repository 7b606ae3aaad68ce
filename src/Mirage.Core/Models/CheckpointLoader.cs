using System.Text.Json;
using Mirage.Core.Models.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// Finds a checkpoint's weight files (one <c>model.safetensors</c>, or shards listed in
/// <c>model.safetensors.index.json</c>) and copies them, name for name, into a module's
/// parameters, converting each to the module's dtype.
/// </summary>
internal static class CheckpointLoader
{
    // Tensors some checkpoints carry that the forward pass recomputes or does not use.
    private static bool IsIgnorable(string name, ModelConfig config) =>
        name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)
        || (config.TieWordEmbeddings && name == "lm_head.weight");

    /// <summary>The weight files of a checkpoint folder, in shard order.</summary>
    public static IReadOnlyList<string> FindWeightFiles(string directory)
    {
        var single = Path.Combine(directory, "model.safetensors");
        if (File.Exists(single))
            return [single];
        var indexPath = Path.Combine(directory, "model.safetensors.index.json");
        if (!File.Exists(indexPath))
            throw new InvalidCheckpointException(
                $"'{directory}' has neither model.safetensors nor model.safetensors.index.json (only safetensors weights are supported).");
        try
        {
            using var index = JsonDocument.Parse(File.ReadAllText(indexPath));
            if (!index.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidCheckpointException($"'{indexPath}' has no 'weight_map' object.");
            var files = map.EnumerateObject().Select(p => p.Value.GetString()!).Distinct().Order(StringComparer.Ordinal)
                .Select(f => Path.Combine(directory, f)).ToList();
            var missing = files.Where(f => !File.Exists(f)).ToList();
            if (missing.Count > 0)
                throw new InvalidCheckpointException($"'{indexPath}' lists shards that do not exist: {string.Join(", ", missing.Select(Path.GetFileName))}.");
            return files;
        }
        catch (JsonException e)
        {
            throw new InvalidCheckpointException($"'{indexPath}' is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>
    /// Copies every parameter of <paramref name="module"/> from the files; throws once, listing
    /// every missing, unexpected and misshaped tensor, if the checkpoint does not fit.
    /// </summary>
    public static void Load(nn.Module module, IReadOnlyList<string> files, ModelConfig config)
    {
        var shards = files.Select(SafetensorsFile.Open).ToList();
        try
        {
            var owner = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var shard in shards)
            foreach (var name in shard.Tensors.Keys)
                if (!owner.TryAdd(name, shard))
                    throw new InvalidCheckpointException($"Tensor '{name}' appears in both '{owner[name].Path}' and '{shard.Path}'.");

            var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            var missing = parameters.Keys.Where(n => !owner.ContainsKey(n)).ToList();
            var unexpected = owner.Keys.Where(n => !parameters.ContainsKey(n) && !IsIgnorable(n, config)).ToList();
            var misshaped = parameters.Where(p => owner.TryGetValue(p.Key, out var f) && !f.Tensors[p.Key].Shape.SequenceEqual(p.Value.shape))
                .Select(p => $"{p.Key}: checkpoint [{string.Join(", ", owner[p.Key].Tensors[p.Key].Shape)}], model [{string.Join(", ", p.Value.shape)}]")
                .ToList();
            if (missing.Count + unexpected.Count + misshaped.Count > 0)
                throw new InvalidCheckpointException(Describe(config, missing, unexpected, misshaped));

            using var _ = no_grad();
            foreach (var (name, parameter) in parameters)
            {
                using var loaded = owner[name].Read(name, parameter.dtype, parameter.device);
                parameter.copy_(loaded);
            }
        }
        finally
        {
            shards.ForEach(s => s.Dispose());
        }
    }

    private static string Describe(ModelConfig config, List<string> missing, List<string> unexpected, List<string> misshaped)
    {
        static string List(string label, List<string> items) =>
            items.Count == 0 ? "" : $"\n  {label} ({items.Count}): {string.Join(", ", items.Take(10))}{(items.Count > 10 ? ", ..." : "")}";
        return $"The checkpoint does not match its config ({config.Architecture}, {config.NumLayers} layers, hidden {config.HiddenSize}):"
            + List("missing", missing) + List("unexpected", unexpected) + List("wrong shape", misshaped);
    }
}
