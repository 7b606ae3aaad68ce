using System.Text.Json;
using Mirage.Core.Models.Safetensors;
using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// Finds a checkpoint's weight files (one <c>model.safetensors</c>, or shards listed in
/// <c>model.safetensors.index.json</c>) and fills a module's parameters from them, name for name,
/// each in the module's dtype.
/// </summary>
internal static class CheckpointLoader
{
    // An index lists tensor names and shard names; real ones are a few MB.
    private const long MaxIndexBytes = 50 << 20;

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
        var files = ShardNames(indexPath).Select(f => Path.Combine(directory, f)).ToList();
        var missing = files.Where(f => !File.Exists(f)).ToList();
        if (missing.Count > 0)
            throw new InvalidCheckpointException($"'{indexPath}' lists shards that do not exist: {string.Join(", ", missing.Select(Path.GetFileName))}.");
        return files;
    }

    /// <summary>
    /// The shard file names a <c>model.safetensors.index.json</c> lists, in order: each a plain file
    /// name beside the index (a name with a folder in it could point anywhere on the machine).
    /// </summary>
    public static IReadOnlyList<string> ShardNames(string indexPath)
    {
        try
        {
            using var index = JsonDocument.Parse(ModelFiles.ReadBytes(indexPath, MaxIndexBytes));
            if (!index.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidCheckpointException($"'{indexPath}' has no 'weight_map' object.");
            var names = map.EnumerateObject().Select(p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()!
                : throw new InvalidCheckpointException($"'{indexPath}': weight_map['{p.Name}'] must be a shard file name, got {p.Value.GetRawText()}.")).Distinct().Order(StringComparer.Ordinal).ToList();
            if (names.FirstOrDefault(n => n.Length == 0 || n != Path.GetFileName(n) || n is "." or "..") is { } outside)
                throw new InvalidCheckpointException($"'{indexPath}': shard '{outside}' is not a file name in the checkpoint folder.");
            return names;
        }
        catch (JsonException e)
        {
            throw new InvalidCheckpointException($"'{indexPath}' is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>
    /// Checks, before anything is allocated, that the weights <paramref name="config"/> describes
    /// are not far more than the files hold: a damaged config (a size of 10^9) is refused instead of
    /// allocating what no file backs. Headers only are read.
    /// </summary>
    public static void CheckSize(IReadOnlyList<ICheckpointTensors> shards, ModelConfig config, string configPath)
    {
        long described;
        try
        {
            described = config.ParameterCount();
        }
        catch (OverflowException)
        {
            throw new InvalidCheckpointException($"'{configPath}' describes more weights than can be counted: check hidden_size, intermediate_size, vocab_size and num_hidden_layers.");
        }
        long held = shards.Sum(shard => shard.Shapes.Values.Sum(shape => shape.Aggregate(1L, (a, b) => a * b)));
        // Within twice the files (plus a little for tiny models), allocating is harmless and the exact
        // check that follows names each missing or misshaped tensor; beyond it, no file backs the config.
        if (described > 2 * held + (1 << 20))
            throw new InvalidCheckpointException(
                $"'{configPath}' describes {described:N0} weights but the weight files hold {held:N0}: check hidden_size ({config.HiddenSize}), intermediate_size ({config.IntermediateSize}), "
                + $"vocab_size ({config.VocabSize}), num_hidden_layers ({config.NumLayers}) and head_dim ({config.HeadDim}).");
    }

    /// <summary>
    /// Fills every parameter of <paramref name="module"/> from the files; throws once, listing
    /// every missing, unexpected and misshaped tensor, if the checkpoint does not fit. With
    /// <paramref name="adopt"/> each parameter takes the tensor read for it as its storage (for a
    /// safetensors file whose dtype matches, the file's mapped pages) instead of a copy: for a model
    /// that is only read, whose files stay in place while it lives.
    /// </summary>
    public static void Load(nn.Module module, IReadOnlyList<ICheckpointTensors> shards, ModelConfig config, bool adopt = false)
    {
        if (config.FusedProjections)
            shards = shards.Select(s => FusedProjections.Split(s, config)).ToList();
        var owner = new Dictionary<string, ICheckpointTensors>(StringComparer.Ordinal);
        foreach (var shard in shards)
        foreach (var name in shard.Shapes.Keys)
            if (!owner.TryAdd(name, shard))
                throw new InvalidCheckpointException($"Tensor '{name}' appears in both '{owner[name].Path}' and '{shard.Path}'.");

        var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var missing = parameters.Keys.Where(n => !owner.ContainsKey(n)).ToList();
        var unexpected = owner.Keys.Where(n => !parameters.ContainsKey(n) && !IsIgnorable(n, config)).ToList();
        var misshaped = parameters.Where(p => owner.TryGetValue(p.Key, out var f) && !f.Shapes[p.Key].SequenceEqual(p.Value.shape))
            .Select(p => $"{p.Key}: checkpoint [{string.Join(", ", owner[p.Key].Shapes[p.Key])}], model [{string.Join(", ", p.Value.shape)}]")
            .ToList();
        if (missing.Count + unexpected.Count + misshaped.Count > 0)
            throw new InvalidCheckpointException(Describe(config, missing, unexpected, misshaped));

        using var _ = no_grad();
        foreach (var (name, parameter) in parameters)
        {
            using var loaded = owner[name].Read(name, parameter.dtype, parameter.device);
            // NaN or infinite weights make every score NaN; no trained checkpoint holds them. max and
            // min propagate NaN, and unlike isfinite() they need no temporary the size of the tensor.
            if (loaded.NumberOfElements > 0 && !(Finite(loaded.max()) && Finite(loaded.min())))
                throw new InvalidCheckpointException($"'{owner[name].Path}', tensor '{name}': holds NaN or infinite values; the file is damaged.");
            if (adopt)
                parameter.set_(loaded);
            else
                parameter.copy_(loaded);
        }
    }

    private static bool Finite(Tensor value)
    {
        using (value)
            return double.IsFinite(value.to(ScalarType.Float64).item<double>());
    }

    /// <summary>Opens every weight file (headers are checked; data stays mapped until read); the caller disposes them.</summary>
    public static List<SafetensorsFile> Open(IReadOnlyList<string> files)
    {
        var shards = new List<SafetensorsFile>();
        try
        {
            foreach (var file in files)
                shards.Add(SafetensorsFile.Open(file));
            return shards;
        }
        catch
        {
            shards.ForEach(s => s.Dispose());
            throw;
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
