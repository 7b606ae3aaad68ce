using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Mirage.Core.Models.Gguf;

/// <summary>
/// A GGUF file seen as a checkpoint: the configuration its metadata describes and its tensors under
/// Hugging Face names, dequantized to the compute dtype and, for the <c>llama</c> architecture, with
/// Q and K rows put back in the rotate-half order the runtime uses. Attribution then runs on the
/// dequantized weights: citations of a quantized model explain the dequantized model.
/// </summary>
public sealed class GgufCheckpoint : ICheckpointTensors, IDisposable
{

    private readonly Dictionary<string, GgufTensorInfo> _byName;

    private GgufCheckpoint(GgufFile file, ModelConfig config, Dictionary<string, GgufTensorInfo> byName)
    {
        File = file;
        Config = config;
        _byName = byName;
        Shapes = byName.ToDictionary(p => p.Key, p => p.Value.Shape, StringComparer.Ordinal);
    }

    /// <summary>The file.</summary>
    public GgufFile File { get; }

    /// <inheritdoc />
    public string Path => File.Path;

    /// <summary>The configuration from the metadata.</summary>
    public ModelConfig Config { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, long[]> Shapes { get; }

    /// <summary>How many tensors are stored in each type (what a Q4_K_M file really holds).</summary>
    public IReadOnlyDictionary<GgufType, int> TypeCounts => File.Tensors.GroupBy(t => t.Type).OrderBy(g => g.Key).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>Opens a GGUF file and reads its configuration.</summary>
    /// <exception cref="InvalidCheckpointException">Not a readable GGUF file, or an architecture this runtime does not run.</exception>
    public static GgufCheckpoint Open(string path)
    {
        var file = GgufFile.Open(path);
        try
        {
            var config = ReadConfig(file);
            var byName = new Dictionary<string, GgufTensorInfo>(StringComparer.Ordinal);
            foreach (var tensor in file.Tensors)
            {
                // Llama 3.1's RoPE scaling travels as one divisor per frequency, not as weights.
                if (tensor.Name == "rope_freqs.weight")
                {
                    config = config with { RopeScaling = RopeScaling.FromFactors(Factors(file, tensor, config)) };
                    continue;
                }
                // Phi-3's LongRoPE: both factor sets, the attention factor and the original context from metadata.
                if (tensor.Name is "rope_factors_short.weight" or "rope_factors_long.weight")
                {
                    var scaling = config.RopeScaling ?? new RopeScaling("longrope", 1,
                        OriginalMaxPositionEmbeddings: file.Get($"{file.Get("general.architecture", "")}.rope.scaling.original_context_length", config.MaxPositionEmbeddings))
                    {
                        AttentionFactor = file.Get($"{file.Get("general.architecture", "")}.rope.scaling.attn_factor", 1.0) is var factor && double.IsFinite(factor) && factor > 0 ? factor
                            : throw new InvalidCheckpointException($"'{file.Path}': metadata 'rope.scaling.attn_factor' is {factor}; it must be a positive finite number."),
                    };
                    config = config with
                    {
                        RopeScaling = tensor.Name == "rope_factors_short.weight"
                            ? scaling with { ShortFactors = Factors(file, tensor, config) }
                            : scaling with { LongFactors = Factors(file, tensor, config) },
                    };
                    continue;
                }
                byName[GgufNames.ToHuggingFace(tensor.Name, config) ?? tensor.Name] = tensor;
            }
            return new GgufCheckpoint(file, config, byName);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    // One divisor per rotated frequency, each positive and finite; the count is checked before anything is decoded.
    private static double[] Factors(GgufFile file, GgufTensorInfo tensor, ModelConfig config)
    {
        var factors = tensor.ElementCount == config.RotaryDim / 2 ? file.Dequantize(tensor) : null;
        if (factors is null || factors.Any(f => !(f > 0) || !float.IsFinite(f)))
            throw new InvalidCheckpointException($"'{file.Path}': {tensor.Name} holds {tensor.ElementCount:N0} factors; {config.RotaryDim} rotated dimensions need {config.RotaryDim / 2} positive ones.");
        return factors.Select(f => (double)f).ToArray();
    }

    // The metadata as a Hugging Face config.json, so one parser checks both formats' configurations.
    private static ModelConfig ReadConfig(GgufFile file)
    {
        var arch = file.Get("general.architecture", "");
        var family = ModelFamily.ByGgufArchitecture(arch)
            ?? throw new InvalidCheckpointException($"'{file.Path}' holds a '{arch}' model; GGUF architectures Mirage runs: {string.Join(", ", ModelFamily.All.Where(f => f.ReadsGguf).Select(f => f.GgufArchitecture))}.");
        var embedding = file.Tensors.FirstOrDefault(t => t.Name == "token_embd.weight")
            ?? throw new InvalidCheckpointException($"'{file.Path}' has no token_embd.weight tensor.");
        int heads = file.Get($"{arch}.attention.head_count", 0);
        // JSON has no NaN or infinity: a non-finite field is refused here, by its GGUF key.
        double Number(string key, double fallback) => file.Get(key, fallback) is var value && double.IsFinite(value) ? value
            : throw new InvalidCheckpointException($"'{file.Path}': metadata '{key}' is {value}; it must be a finite number.");
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(family.Architecture),
            ["hidden_size"] = file.Get($"{arch}.embedding_length", 0),
            ["intermediate_size"] = file.Get($"{arch}.feed_forward_length", 0),
            ["num_hidden_layers"] = file.Get($"{arch}.block_count", 0),
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = file.Get($"{arch}.attention.head_count_kv", heads),
            ["vocab_size"] = embedding.Dimensions.Length == 2 ? embedding.Dimensions[1] : 0,
            ["max_position_embeddings"] = file.Get($"{arch}.context_length", 2048),
            ["rms_norm_eps"] = Number($"{arch}.attention.layer_norm_rms_epsilon", 1e-5),
            ["rope_theta"] = Number($"{arch}.rope.freq_base", 10000.0),
            ["tie_word_embeddings"] = file.Tensors.All(t => t.Name != "output.weight"),
            ["attention_bias"] = !family.QkvBias && file.Tensors.Any(t => t.Name == "blk.0.attn_q.bias"),
            ["bos_token_id"] = file.Metadata.ContainsKey("tokenizer.ggml.bos_token_id") ? file.Get("tokenizer.ggml.bos_token_id", 0) : null,
            ["eos_token_id"] = file.Metadata.ContainsKey("tokenizer.ggml.eos_token_id") ? file.Get("tokenizer.ggml.eos_token_id", 0) : null,
        };
        if (file.Metadata.ContainsKey($"{arch}.attention.key_length"))
            config["head_dim"] = file.Get($"{arch}.attention.key_length", 0);
        int headDim = file.Get($"{arch}.attention.key_length", heads > 0 ? file.Get($"{arch}.embedding_length", 0) / heads : 0);
        if (file.Get($"{arch}.rope.dimension_count", headDim) is var rotated && rotated != headDim && headDim > 0)
            config["partial_rotary_factor"] = (double)rotated / headDim;
        if (file.Metadata.ContainsKey($"{arch}.attention.sliding_window"))
            config["sliding_window"] = file.Get($"{arch}.attention.sliding_window", 0);
        if (family.Gemma)
        {
            config["hidden_act"] = "gelu_pytorch_tanh";
            foreach (var key in new[] { "attn_logit_softcapping", "final_logit_softcapping" })
                if (file.Metadata.ContainsKey($"{arch}.{key}"))
                    config[key] = Number($"{arch}.{key}", 0.0);
        }
        if (file.Get($"{arch}.rope.scaling.type", "none") is var scaling and not "none")
            config["rope_scaling"] = new JsonObject { ["rope_type"] = scaling, ["factor"] = Number($"{arch}.rope.scaling.factor", 1.0) };
        return ModelConfig.Parse(config.ToJsonString(), $"{file.Path}' metadata ('{arch}.*");
    }

    /// <inheritdoc />
    public Tensor Read(string name, ScalarType? dtype = null, Device? device = null)
    {
        if (!_byName.TryGetValue(name, out var info))
            throw new InvalidCheckpointException($"'{Path}' has no tensor for '{name}'.");
        using var scope = NewDisposeScope();
        var result = File.Dequantize(info, dtype ?? ScalarType.Float32);
        File.Release(info);
        int heads = ModelFamily.Of(Config).PermutesQk ? GgufNames.PermutedHeads(name, Config) : 0;
        // GGUF keeps each head's RoPE pairs interleaved (row 2i, 2i+1); the runtime rotates halves (rows i, i + d/2).
        if (heads > 0)
            result = Unpermute(result, heads);
        // llama.cpp's Gemma files store norm weights with their offset added (it multiplies plainly).
        if (Config.NormOffset != 0 && name.EndsWith("norm.weight", StringComparison.Ordinal))
            result = result.to(ScalarType.Float32).Plus(-Config.NormOffset).to(result.dtype);
        return result.to(device ?? CPU).MoveToOuterDisposeScope();
    }

    /// <summary>GGUF's interleaved Q/K rows to rotate-half order: per head, rows (2i, 2i+1) become (i, i + d/2).</summary>
    public static Tensor Unpermute(Tensor rows, int heads)
    {
        var shape = rows.shape;
        return rows.reshape([heads, shape[0] / heads / 2, 2, .. shape[1..]]).transpose(1, 2).reshape(shape);
    }

    /// <summary>Rotate-half Q/K rows to GGUF's interleaved order (what llama.cpp's converter does).</summary>
    public static Tensor Permute(Tensor rows, int heads)
    {
        var shape = rows.shape;
        return rows.reshape([heads, 2, shape[0] / heads / 2, .. shape[1..]]).transpose(1, 2).reshape(shape);
    }

    /// <inheritdoc />
    public void Dispose() => File.Dispose();
}
