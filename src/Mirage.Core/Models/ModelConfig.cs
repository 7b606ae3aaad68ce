using System.Text.Json;
using System.Text.Json.Nodes;

namespace Mirage.Core.Models;

/// <summary>
/// The facts of a decoder-only checkpoint that the forward pass needs, read from its Hugging Face
/// <c>config.json</c>. Every supported family runs through one forward pass; what differs between
/// them (norm offsets, soft-capping, fused projections, q/k norms, biases, sliding windows, RoPE
/// variants) is data here, not separate code paths.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>The <c>architectures</c> values this runtime can run (see <see cref="ModelFamily.All"/>).</summary>
    public static IReadOnlyList<string> SupportedArchitectures { get; } = ModelFamily.All.Select(f => f.Architecture).ToList();

    /// <summary>The architecture name, one of <see cref="SupportedArchitectures"/>.</summary>
    public required string Architecture { get; init; }
    /// <summary>Width of the residual stream.</summary>
    public required int HiddenSize { get; init; }
    /// <summary>Width of the gated feed-forward layer (SwiGLU or GeGLU).</summary>
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
    /// <summary>The share of each head's dimensions that RoPE rotates (<c>partial_rotary_factor</c>; Phi-4-mini 0.75); the rest pass through.</summary>
    public double PartialRotaryFactor { get; init; } = 1;
    /// <summary>How many of each head's dimensions are rotated.</summary>
    public int RotaryDim => (int)(HeadDim * PartialRotaryFactor);
    /// <summary>RoPE scaling, or null for none.</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>Whether q/k/v projections have biases (Qwen2 always; Llama with <c>attention_bias</c>).</summary>
    public bool QkvBias { get; init; }
    /// <summary>Whether the attention output projection has a bias (Llama <c>attention_bias</c>).</summary>
    public bool OutputBias { get; init; }
    /// <summary>Whether each head's queries and keys are RMS-normalised before RoPE (Qwen3's <c>q_norm</c> and <c>k_norm</c>).</summary>
    public bool QkNorm { get; init; }
    /// <summary>Whether the checkpoint stores Q/K/V and gate/up fused (Phi-3's <c>qkv_proj</c> and <c>gate_up_proj</c>; see <see cref="FusedProjections"/>).</summary>
    public bool FusedProjections { get; init; }
    /// <summary>Added to every RMSNorm weight when it is applied (Gemma's <c>x * (1 + w)</c>: 1; 0 elsewhere).</summary>
    public double NormOffset { get; init; }
    /// <summary>Whether embeddings are multiplied by sqrt(hidden size) before the first layer (Gemma).</summary>
    public bool ScaleEmbeddings { get; init; }
    /// <summary>Whether attention and MLP outputs are normalised too, not only their inputs (Gemma 2's four norms per layer).</summary>
    public bool SandwichNorms { get; init; }
    /// <summary>The gate activation of the MLP: <c>silu</c> or <c>gelu_pytorch_tanh</c>.</summary>
    public string HiddenActivation { get; init; } = "silu";
    /// <summary>The attention score scale, or null for 1/sqrt(head dim) (Gemma 2: <c>query_pre_attn_scalar</c>^-1/2).</summary>
    public double? AttentionScale { get; init; }
    /// <summary>The RoPE base of sliding-window layers when it differs from <see cref="RopeTheta"/> (Gemma 3's <c>rope_local_base_freq</c>; those layers take no RoPE scaling), or null.</summary>
    public double? LocalRopeTheta { get; init; }
    /// <summary>Attention scores become <c>tanh(s / cap) * cap</c> (Gemma 2), or null.</summary>
    public double? AttentionSoftcap { get; init; }
    /// <summary>Logits become <c>tanh(l / cap) * cap</c> (Gemma 2), or null.</summary>
    public double? FinalSoftcap { get; init; }
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
        const long MaxConfigBytes = 16 << 20;
        var path = Path.Combine(directory, "config.json");
        if (!File.Exists(path))
            throw new InvalidCheckpointException($"'{directory}' has no config.json; a Hugging Face checkpoint folder needs config.json, model.safetensors and a tokenizer.");
        var config = Parse(ModelFiles.ReadText(path, MaxConfigBytes), path);
        var generationPath = Path.Combine(directory, "generation_config.json");
        if (File.Exists(generationPath))
            config = config with { EosTokenIds = config.EosTokenIds.Union(ReadIds(ParseObject(ModelFiles.ReadText(generationPath, MaxConfigBytes), generationPath), "eos_token_id", generationPath)).ToArray() };
        return config;
    }

    /// <summary>Parses the JSON text of a <c>config.json</c>; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig Parse(string json, string source = "config.json")
    {
        var root = ParseObject(json, source);
        var architectures = Strings(root, "architectures", source);
        var architecture = architectures?.FirstOrDefault(SupportedArchitectures.Contains);
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

        int? Positive(string key)
        {
            var value = Int(root, key, source);
            if (value <= 0)
                throw new InvalidCheckpointException($"'{source}': '{key}' must be positive, got {value}.");
            return value;
        }

        int hidden = Required("hidden_size"), heads = Required("num_attention_heads"), layers = Required("num_hidden_layers");
        if (layers > MaxLayers)
            throw new InvalidCheckpointException($"'{source}': 'num_hidden_layers' is {layers:N0}, beyond any real checkpoint (at most {MaxLayers:N0} are accepted).");
        int kvHeads = Positive("num_key_value_heads") ?? heads;
        int headDim = Positive("head_dim") ?? hidden / heads;
        if (headDim == 0)
            throw new InvalidCheckpointException($"'{source}': hidden_size ({hidden}) is smaller than num_attention_heads ({heads}); set head_dim.");
        if (heads % kvHeads != 0)
            throw new InvalidCheckpointException($"'{source}': num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kvHeads}).");
        if (headDim % 2 != 0)
            throw new InvalidCheckpointException($"'{source}': head_dim ({headDim}) must be even for rotary embeddings.");

        double partial = Double(root, "partial_rotary_factor", source, min: 0, exclusive: true) ?? 1;
        int rotaryDim = (int)(headDim * partial);
        if (partial > 1 || rotaryDim % 2 != 0 || rotaryDim == 0)
            throw new InvalidCheckpointException($"'{source}': partial_rotary_factor {partial} of head_dim {headDim} must give an even number of rotated dimensions, at most head_dim.");
        var family = ModelFamily.ByArchitecture(architecture)!;
        var activation = Str(root, "hidden_activation", source) ?? Str(root, "hidden_act", source) ?? "silu";
        if (activation is not ("silu" or "gelu_pytorch_tanh"))
            throw new InvalidCheckpointException($"'{source}': hidden activation '{activation}' is not supported; supported: silu, gelu_pytorch_tanh.");
        double? Cap(string key) => Double(root, key, source, min: 0, exclusive: true);
        bool attentionBias = Bool(root, "attention_bias", source) ?? false;
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
            MaxPositionEmbeddings = Positive("max_position_embeddings") ?? 2048,
            RmsNormEps = Double(root, "rms_norm_eps", source, min: 0) ?? 1e-6,
            RopeTheta = Double(root, "rope_theta", source, min: 0, exclusive: true) ?? 10000,
            PartialRotaryFactor = partial,
            RopeScaling = ParseRopeScaling(root, source, rotaryDim),
            QkvBias = family.QkvBias || attentionBias,
            OutputBias = !family.QkvBias && attentionBias,
            QkNorm = family.QkNorm,
            FusedProjections = family.FusedProjections,
            NormOffset = family.Gemma ? 1 : 0,
            ScaleEmbeddings = family.Gemma,
            SandwichNorms = family.Gemma,
            HiddenActivation = activation,
            AttentionScale = Double(root, "query_pre_attn_scalar", source, min: 0, exclusive: true) is double scalar ? 1 / Math.Sqrt(scalar) : null,
            AttentionSoftcap = family.Gemma ? Cap("attn_logit_softcapping") : null,
            FinalSoftcap = family.Gemma ? Cap("final_logit_softcapping") : null,
            LocalRopeTheta = family.LocalRopeTheta ? Double(root, "rope_local_base_freq", source, min: 0, exclusive: true) ?? 10000 : null,
            MlpBias = Bool(root, "mlp_bias", source) ?? false,
            TieWordEmbeddings = Bool(root, "tie_word_embeddings", source) ?? family.Gemma,
            SlidingWindows = ParseSlidingWindows(root, family, layers, source),
            BosTokenId = ReadIds(root, "bos_token_id", source).Cast<int?>().FirstOrDefault(),
            EosTokenIds = ReadIds(root, "eos_token_id", source),
            TorchDtype = Str(root, "torch_dtype", source) ?? Str(root, "dtype", source),
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
            ["model_type"] = ModelFamily.Of(this).ModelType,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumLayers,
            ["num_attention_heads"] = NumHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["head_dim"] = HeadDim,
            ["vocab_size"] = VocabSize,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["hidden_act"] = HiddenActivation,
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["rope_scaling"] = RopeScaling is null ? null : RopeScaling.Type == "longrope" ? new JsonObject
            {
                ["rope_type"] = "longrope",
                ["short_factor"] = new JsonArray(RopeScaling.ShortFactors!.Select(f => (JsonNode)f).ToArray()),
                ["long_factor"] = new JsonArray(RopeScaling.LongFactors!.Select(f => (JsonNode)f).ToArray()),
                ["factor"] = RopeScaling.Factor,
                ["attention_factor"] = RopeScaling.AttentionFactor,
                ["original_max_position_embeddings"] = RopeScaling.OriginalMaxPositionEmbeddings,
            } : new JsonObject
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
        if (!ModelFamily.Of(this).QkvBias)
            json["attention_bias"] = QkvBias;
        if (AttentionScale is double scale)
            json["query_pre_attn_scalar"] = 1 / (scale * scale);
        if (AttentionSoftcap is double attentionCap)
            json["attn_logit_softcapping"] = attentionCap;
        if (FinalSoftcap is double finalCap)
            json["final_logit_softcapping"] = finalCap;
        if (LocalRopeTheta is double local)
            json["rope_local_base_freq"] = local;
        if (PartialRotaryFactor != 1)
            json["partial_rotary_factor"] = PartialRotaryFactor;
        if (window is not null)
            json["layer_types"] = new JsonArray(SlidingWindows.Select(w => (JsonNode)(w is null ? "full_attention" : "sliding_attention")).ToArray());
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// The number of weights this config describes (a tied embedding counts once), in checked
    /// arithmetic: the loader compares it with what the weight files hold before allocating anything.
    /// </summary>
    /// <exception cref="OverflowException">The sizes are too large to count.</exception>
    public long ParameterCount()
    {
        checked
        {
            long h = HiddenSize, q = (long)NumHeads * HeadDim, kv = (long)NumKeyValueHeads * HeadDim, i = IntermediateSize;
            long attention = h * q + 2 * h * kv + q * h + (QkvBias ? q + 2 * kv : 0) + (OutputBias ? h : 0);
            long mlp = 3 * h * i + (MlpBias ? 2 * i + h : 0);
            long layer = attention + mlp + (SandwichNorms ? 4 : 2) * h + (QkNorm ? 2L * HeadDim : 0);
            long embedding = (long)VocabSize * h;
            return embedding * (TieWordEmbeddings ? 1 : 2) + NumLayers * layer + h;
        }
    }

    /// <summary>More layers than any real checkpoint has: the config is damaged (and per-layer data would be huge).</summary>
    public const int MaxLayers = 10_000;

    private static JsonObject ParseObject(string json, string source)
    {
        try
        {
            return JsonNode.Parse(json) as JsonObject ?? throw new InvalidCheckpointException($"'{source}' is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidCheckpointException($"'{source}' is not valid JSON: {e.Message}", e);
        }
    }

    private static RopeScaling? ParseRopeScaling(JsonObject root, string source, int rotaryDim)
    {
        if (root["rope_scaling"] is null)
            return null;
        if (root["rope_scaling"] is not JsonObject node)
            throw new InvalidCheckpointException($"'{source}': 'rope_scaling' must be an object or null, got {root["rope_scaling"]!.ToJsonString()}.");
        // Field names in errors read "rope_scaling.factor".
        node = new JsonObject(node.Select(p => KeyValuePair.Create("rope_scaling." + p.Key, p.Value?.DeepClone())));
        var type = Str(node, "rope_scaling.rope_type", source) ?? Str(node, "rope_scaling.type", source) ?? "default";
        if (type == "default")
            return null;
        if (!RopeScaling.SupportedTypes.Contains(type))
            throw new InvalidCheckpointException($"'{source}': rope_scaling type '{type}' is not supported; supported: {string.Join(", ", RopeScaling.SupportedTypes)}.");
        if (type is "longrope" or "su")
            return ParseLongRope(root, node, source, rotaryDim);
        var factor = Double(node, "rope_scaling.factor", source, min: 0, exclusive: true) ?? throw new InvalidCheckpointException($"'{source}': rope_scaling needs 'factor'.");
        int original = Int(node, "rope_scaling.original_max_position_embeddings", source) ?? 8192;
        if (original <= 0)
            throw new InvalidCheckpointException($"'{source}': rope_scaling 'original_max_position_embeddings' must be positive, got {original}.");
        var scaling = new RopeScaling(type, factor,
            Double(node, "rope_scaling.low_freq_factor", source, min: 0, exclusive: true) ?? 1,
            Double(node, "rope_scaling.high_freq_factor", source, min: 0, exclusive: true) ?? 4,
            original);
        if (type == "llama3" && scaling.HighFreqFactor <= scaling.LowFreqFactor)
            throw new InvalidCheckpointException($"'{source}': rope_scaling 'high_freq_factor' ({scaling.HighFreqFactor}) must be above 'low_freq_factor' ({scaling.LowFreqFactor}).");
        return scaling;
    }

    // LongRoPE as transformers computes it: the factor is max / original positions when the config
    // names the original (Phi-3), and the attention factor grows with the log of that factor.
    private static RopeScaling ParseLongRope(JsonObject root, JsonObject node, string source, int rotaryDim)
    {
        double[] Factors(string key)
        {
            var value = node[key] as JsonArray ?? throw new InvalidCheckpointException($"'{source}': LongRoPE needs '{key}', a list of {rotaryDim / 2} numbers.");
            var factors = value.Select((v, i) => Double(new JsonObject { [key] = v?.DeepClone() }, key, source, min: 0, exclusive: true)
                ?? throw new InvalidCheckpointException($"'{source}': '{key}' must hold numbers.")).ToArray();
            return factors.Length == rotaryDim / 2 ? factors
                : throw new InvalidCheckpointException($"'{source}': '{key}' holds {factors.Length} factors; {rotaryDim} rotated dimensions need {rotaryDim / 2}.");
        }
        int positions = Int(root, "max_position_embeddings", source) ?? 2048;
        int? topOriginal = Int(root, "original_max_position_embeddings", source);
        int original = topOriginal ?? Int(node, "rope_scaling.original_max_position_embeddings", source) ?? positions;
        if (original <= 0)
            throw new InvalidCheckpointException($"'{source}': original_max_position_embeddings must be positive, got {original}.");
        double factor = topOriginal is not null ? (double)positions / original : Double(node, "rope_scaling.factor", source, min: 0, exclusive: true) ?? 1;
        double attention = Double(node, "rope_scaling.attention_factor", source, min: 0, exclusive: true)
            ?? (factor <= 1 ? 1 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original)));
        return new RopeScaling("longrope", factor, OriginalMaxPositionEmbeddings: original)
        {
            ShortFactors = Factors("rope_scaling.short_factor"),
            LongFactors = Factors("rope_scaling.long_factor"),
            AttentionFactor = attention,
        };
    }

    private static int?[] ParseSlidingWindows(JsonObject root, ModelFamily family, int layers, string source)
    {
        int? window = Int(root, "sliding_window", source);
        if (window <= 0)
            throw new InvalidCheckpointException($"'{source}': 'sliding_window' must be positive or null, got {window}.");
        var types = Strings(root, "layer_types", source);
        var windows = new int?[layers];
        if (window is null)
            return windows;
        if (types is not null)
        {
            for (int i = 0; i < layers && i < types.Count; i++)
                windows[i] = types[i] == "sliding_attention" ? window : null;
            return windows;
        }
        switch (family.Sliding)
        {
            case SlidingLayers.AllButEveryNth:
                int pattern = Int(root, "sliding_window_pattern", source) ?? family.SlidingPattern;
                if (pattern < 1)
                    throw new InvalidCheckpointException($"'{source}': 'sliding_window_pattern' must be positive, got {pattern}.");
                for (int i = 0; i < layers; i++)
                    windows[i] = (i + 1) % pattern != 0 ? window : null;
                break;
            case SlidingLayers.All:
                Array.Fill(windows, window);
                break;
            case SlidingLayers.FromMaxWindowLayers when Bool(root, "use_sliding_window", source) ?? false:
                int first = Int(root, "max_window_layers", source) ?? layers;
                for (int i = Math.Max(0, first); i < layers; i++)
                    windows[i] = window;
                break;
        }
        return windows;
    }

    // Typed readers: a field of the wrong JSON type names the file, the field and what it holds, so a
    // damaged config is one clear error rather than an exception from deep in the JSON library.
    private static InvalidCheckpointException WrongType(string source, string key, string expected, JsonNode value) =>
        new($"'{source}': '{key}' must be {expected}, got {value.ToJsonString()}.");

    private static int? Int(JsonObject node, string key, string source)
    {
        var value = node[key];
        if (value is null)
            return null;
        if (value is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
        {
            if (v.TryGetValue(out int i))
                return i;
            if (v.TryGetValue(out double x) && x == Math.Floor(x) && Math.Abs(x) <= int.MaxValue)
                return (int)x;
        }
        throw WrongType(source, key, "an integer", value);
    }

    private static double? Double(JsonObject node, string key, string source, double min, bool exclusive = false)
    {
        var value = node[key];
        if (value is null)
            return null;
        if (value is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !v.TryGetValue(out double d) || !double.IsFinite(d))
            throw WrongType(source, key, "a number", value);
        if (d < min || (exclusive && d == min))
            throw new InvalidCheckpointException($"'{source}': '{key}' must be {(exclusive ? "above" : "at least")} {min}, got {d}.");
        return d;
    }

    private static bool? Bool(JsonObject node, string key, string source)
    {
        var value = node[key];
        return value switch
        {
            null => null,
            JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
            _ => throw WrongType(source, key, "true or false", value),
        };
    }

    private static string? Str(JsonObject node, string key, string source)
    {
        var value = node[key];
        return value switch
        {
            null => null,
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            _ => throw WrongType(source, key, "a string", value),
        };
    }

    private static List<string>? Strings(JsonObject node, string key, string source)
    {
        var value = node[key];
        if (value is null)
            return null;
        if (value is JsonArray array && array.All(x => x is JsonValue v && v.GetValueKind() == JsonValueKind.String))
            return array.Select(x => x!.GetValue<string>()).ToList();
        throw WrongType(source, key, "a list of strings", value);
    }

    // A token id field: one integer, a list of them, or null.
    private static int[] ReadIds(JsonObject node, string key, string source)
    {
        var value = node[key];
        if (value is null)
            return [];
        if (value is JsonArray array)
            return array.Select((_, i) => Int(new JsonObject { [key] = array[i]?.DeepClone() }, key, source)
                ?? throw WrongType(source, key, "a token id or a list of token ids", value)).ToArray();
        return [Int(node, key, source)!.Value];
    }
}
