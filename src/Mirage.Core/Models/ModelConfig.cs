using System.Text.Json;
using System.Text.Json.Nodes;

namespace Mirage.Core.Models;

/// <summary>
/// The facts of a decoder-only checkpoint that the forward pass needs, read from its Hugging Face
/// <c>config.json</c>. Llama, Qwen2 and Mistral share one shape; the differences are data here
/// (attention biases, sliding windows, RoPE scaling), not separate code paths.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>The <c>architectures</c> values this runtime can run.</summary>
    public static readonly IReadOnlyList<string> SupportedArchitectures = ["LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"];

    /// <summary>The architecture name, one of <see cref="SupportedArchitectures"/>.</summary>
    public required string Architecture { get; init; }
    /// <summary>Width of the residual stream.</summary>
    public required int HiddenSize { get; init; }
    /// <summary>Width of the SwiGLU feed-forward layer.</summary>
    public required int IntermediateSize { get; init; }
    /// <summary>Number of decoder layers.</summary>
    public required int NumLayers { get; init; }
    /// <summary>Number of query heads.</summary>
    public required int NumHeads { get; init; }
    /// <summary>Number of key/value heads (grouped-query attention when fewer than <see cref="NumHeads"/>).</summary>
    public required int NumKeyValueHeads { get; init; }
    /// <summary>Width of one attention head.</summary>
    public required int HeadDim { get; init; }
    /// <summary>Vocabulary size (rows of the embedding and the LM head).</summary>
    public required int VocabSize { get; init; }
    /// <summary>The longest sequence the model was trained for.</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;
    /// <summary>RMSNorm epsilon.</summary>
    public double RmsNormEps { get; init; } = 1e-6;
    /// <summary>RoPE base.</summary>
    public double RopeTheta { get; init; } = 10000;
    /// <summary>RoPE scaling, or null for none.</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>Whether q/k/v projections have biases (Qwen2 always; Llama with <c>attention_bias</c>).</summary>
    public bool QkvBias { get; init; }
    /// <summary>Whether the attention output projection has a bias (Llama <c>attention_bias</c>).</summary>
    public bool OutputBias { get; init; }
    /// <summary>Whether the MLP projections have biases (Llama <c>mlp_bias</c>).</summary>
    public bool MlpBias { get; init; }
    /// <summary>Whether the LM head shares the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Per layer, the sliding attention window in tokens, or null for full attention.</summary>
    public IReadOnlyList<int?> SlidingWindows { get; init; } = [];
    /// <summary>Beginning-of-sequence token id from the config, if any.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>End-of-sequence token ids (config and generation config together).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    /// <summary>The dtype the checkpoint was saved in (<c>torch_dtype</c>), informative only.</summary>
    public string? TorchDtype { get; init; }

    /// <summary>Reads <c>config.json</c> (and <c>generation_config.json</c> for extra EOS ids) from a checkpoint folder.</summary>
    /// <exception cref="InvalidCheckpointException">The file is missing, malformed, or names an unsupported architecture.</exception>
    public static ModelConfig Load(string directory)
    {
        var path = Path.Combine(directory, "config.json");
        if (!File.Exists(path))
            throw new InvalidCheckpointException($"'{directory}' has no config.json; a Hugging Face checkpoint folder needs config.json, model.safetensors and a tokenizer.");
        var config = Parse(File.ReadAllText(path), path);
        var generationPath = Path.Combine(directory, "generation_config.json");
        if (File.Exists(generationPath) && JsonNode.Parse(File.ReadAllText(generationPath)) is JsonObject generation)
            config = config with { EosTokenIds = config.EosTokenIds.Union(ReadIds(generation["eos_token_id"])).ToArray() };
        return config;
    }

    /// <summary>Parses the JSON text of a <c>config.json</c>; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig Parse(string json, string source = "config.json")
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json) as JsonObject ?? throw new InvalidCheckpointException($"'{source}' is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidCheckpointException($"'{source}' is not valid JSON: {e.Message}", e);
        }

        var architectures = root["architectures"] as JsonArray;
        var architecture = architectures?.Select(a => a?.GetValue<string>()).FirstOrDefault(SupportedArchitectures.Contains);
        if (architecture is null)
        {
            var named = architectures is null ? "no 'architectures' entry" : $"architectures [{string.Join(", ", architectures)}]";
            throw new InvalidCheckpointException($"'{source}' has {named}; supported: {string.Join(", ", SupportedArchitectures)}.");
        }

        int Required(string key)
        {
            var value = Int(root, key, source) ?? throw new InvalidCheckpointException($"'{source}' is missing '{key}'.");
            if (value <= 0)
                throw new InvalidCheckpointException($"'{source}': '{key}' must be positive, got {value}.");
            return value;
        }

        int hidden = Required("hidden_size"), heads = Required("num_attention_heads"), layers = Required("num_hidden_layers");
        int kvHeads = Int(root, "num_key_value_heads", source) ?? heads;
        int headDim = Int(root, "head_dim", source) ?? hidden / heads;
        if (heads % kvHeads != 0)
            throw new InvalidCheckpointException($"'{source}': num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kvHeads}).");
        if (headDim % 2 != 0)
            throw new InvalidCheckpointException($"'{source}': head_dim ({headDim}) must be even for rotary embeddings.");

        bool isQwen2 = architecture == "Qwen2ForCausalLM";
        bool attentionBias = Bool(root, "attention_bias") ?? false;
        return new ModelConfig
        {
            Architecture = architecture,
            HiddenSize = hidden,
            IntermediateSize = Required("intermediate_size"),
            NumLayers = layers,
            NumHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = Required("vocab_size"),
            MaxPositionEmbeddings = Int(root, "max_position_embeddings", source) ?? 2048,
            RmsNormEps = Double(root, "rms_norm_eps") ?? 1e-6,
            RopeTheta = Double(root, "rope_theta") ?? 10000,
            RopeScaling = ParseRopeScaling(root["rope_scaling"] as JsonObject, source),
            QkvBias = isQwen2 || attentionBias,
            OutputBias = !isQwen2 && attentionBias,
            MlpBias = Bool(root, "mlp_bias") ?? false,
            TieWordEmbeddings = Bool(root, "tie_word_embeddings") ?? false,
            SlidingWindows = ParseSlidingWindows(root, architecture, layers, source),
            BosTokenId = ReadIds(root["bos_token_id"]).Cast<int?>().FirstOrDefault(),
            EosTokenIds = ReadIds(root["eos_token_id"]),
            TorchDtype = root["torch_dtype"]?.GetValue<string>() ?? root["dtype"]?.GetValue<string>(),
        };
    }

    /// <summary>
    /// This config as a Hugging Face <c>config.json</c> that <see cref="Parse"/> (and transformers)
    /// read back to the same values.
    /// </summary>
    public string ToJson()
    {
        var window = SlidingWindows.FirstOrDefault(w => w is not null);
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(Architecture),
            ["model_type"] = Architecture switch { "Qwen2ForCausalLM" => "qwen2", "MistralForCausalLM" => "mistral", _ => "llama" },
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumLayers,
            ["num_attention_heads"] = NumHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["head_dim"] = HeadDim,
            ["vocab_size"] = VocabSize,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["rope_scaling"] = RopeScaling is null ? null : new JsonObject
            {
                ["rope_type"] = RopeScaling.Type,
                ["factor"] = RopeScaling.Factor,
                ["low_freq_factor"] = RopeScaling.LowFreqFactor,
                ["high_freq_factor"] = RopeScaling.HighFreqFactor,
                ["original_max_position_embeddings"] = RopeScaling.OriginalMaxPositionEmbeddings,
            },
            ["mlp_bias"] = MlpBias,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["sliding_window"] = window,
            ["bos_token_id"] = BosTokenId,
            ["eos_token_id"] = EosTokenIds.Count == 1 ? EosTokenIds[0] : new JsonArray(EosTokenIds.Select(id => (JsonNode)id).ToArray()),
            ["torch_dtype"] = TorchDtype,
        };
        if (Architecture != "Qwen2ForCausalLM")
            json["attention_bias"] = QkvBias;
        if (window is not null)
            json["layer_types"] = new JsonArray(SlidingWindows.Select(w => (JsonNode)(w is null ? "full_attention" : "sliding_attention")).ToArray());
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private static RopeScaling? ParseRopeScaling(JsonObject? node, string source)
    {
        if (node is null)
            return null;
        var type = (node["rope_type"] ?? node["type"])?.GetValue<string>() ?? "default";
        if (type == "default")
            return null;
        if (!RopeScaling.SupportedTypes.Contains(type))
            throw new InvalidCheckpointException($"'{source}': rope_scaling type '{type}' is not supported; supported: {string.Join(", ", RopeScaling.SupportedTypes)}.");
        var factor = Double(node, "factor") ?? throw new InvalidCheckpointException($"'{source}': rope_scaling needs 'factor'.");
        return new RopeScaling(type, factor,
            Double(node, "low_freq_factor") ?? 1,
            Double(node, "high_freq_factor") ?? 4,
            Int(node, "original_max_position_embeddings", source) ?? 8192);
    }

    private static int?[] ParseSlidingWindows(JsonObject root, string architecture, int layers, string source)
    {
        int? window = Int(root, "sliding_window", source);
        var windows = new int?[layers];
        if (window is null)
            return windows;
        if (root["layer_types"] is JsonArray types)
        {
            for (int i = 0; i < layers && i < types.Count; i++)
                windows[i] = types[i]?.GetValue<string>() == "sliding_attention" ? window : null;
            return windows;
        }
        if (architecture == "MistralForCausalLM")
        {
            Array.Fill(windows, window);
        }
        else if (architecture == "Qwen2ForCausalLM" && (Bool(root, "use_sliding_window") ?? false))
        {
            // Qwen2 slides only from layer max_window_layers on.
            int first = Int(root, "max_window_layers", source) ?? layers;
            for (int i = first; i < layers; i++)
                windows[i] = window;
        }
        return windows;
    }

    private static int? Int(JsonObject node, string key, string source)
    {
        var value = node[key];
        if (value is null)
            return null;
        if (value is JsonValue v && v.TryGetValue(out int i))
            return i;
        if (value is JsonValue d && d.TryGetValue(out double x) && x == Math.Floor(x) && Math.Abs(x) <= int.MaxValue)
            return (int)x;
        throw new InvalidCheckpointException($"'{source}': '{key}' must be an integer, got {value.ToJsonString()}.");
    }

    private static double? Double(JsonObject node, string key) =>
        node[key] is JsonValue v && v.TryGetValue(out double d) ? d : null;

    private static bool? Bool(JsonObject node, string key) =>
        node[key] is JsonValue v && v.TryGetValue(out bool b) ? b : null;

    private static int[] ReadIds(JsonNode? node) => node switch
    {
        JsonArray array => array.Select(x => x!.GetValue<int>()).ToArray(),
        JsonValue value when value.TryGetValue(out int id) => [id],
        _ => [],
    };
}
