using Mirage.Core.Tokenization;
using static TorchSharp.torch;

namespace Mirage.Core.Models.Gguf;

/// <summary>
/// Turns a Hugging Face checkpoint folder into a GGUF file that llama.cpp loads: llama.cpp's
/// metadata keys and tensor names, Q/K rows in the <c>llama</c> architecture's interleaved order,
/// the tokenizer as <c>tokenizer.ggml.*</c>, and weights in F32, F16, BF16 or Q8_0 (norms and
/// biases stay F32; rows that are not whole Q8_0 blocks are written F16).
/// </summary>
public static class GgufConverter
{
    // llama.cpp's general.file_type for each output type.
    private static readonly Dictionary<GgufType, uint> FileTypes = new()
    {
        [GgufType.F32] = 0, [GgufType.F16] = 1, [GgufType.Q8_0] = 7, [GgufType.BF16] = 32,
    };

    /// <summary>Converts the folder <paramref name="directory"/> to <paramref name="output"/>, storing matrices as <paramref name="type"/>.</summary>
    /// <exception cref="MirageException">An architecture or tokenizer GGUF cannot hold, or a type Mirage does not write.</exception>
    public static void FromHuggingFace(string directory, string output, GgufType type = GgufType.F32)
    {
        if (!FileTypes.TryGetValue(type, out var fileType))
            throw new MirageException($"Mirage writes GGUF files as F32, F16, BF16 or Q8_0, not {type}; quantize further with llama.cpp.");
        var config = ModelConfig.Load(directory);
        var tokenizer = TextTokenizer.Load(directory, config.EosTokenIds, config.BosTokenId);
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
        var (metadata, extra) = Metadata(config, name, fileType, GgufTokenizer.Metadata(directory, tokenizer, config.VocabSize));

        var shards = CheckpointLoader.Open(CheckpointLoader.FindWeightFiles(directory));
        try
        {
            // Each tensor is read, reordered and encoded when the writer reaches it: one tensor in memory at a time.
            var tensors = new List<GgufTensorData>();
            foreach (var (tensorName, shape) in shards.SelectMany(s => s.Shapes).OrderBy(p => Order(p.Key)))
            {
                if (GgufNames.ToGguf(tensorName, config) is not { } gguf || (config.TieWordEmbeddings && tensorName == "lm_head.weight"))
                    continue;
                var stored = shape.Length < 2 ? GgufType.F32 : type == GgufType.Q8_0 && shape[^1] % 32 != 0 ? GgufType.F16 : type;
                var shard = shards.First(s => s.Shapes.ContainsKey(tensorName));
                tensors.Add(new GgufTensorData(gguf, shape, stored, () => GgufWriter.Quantize(stored, Values(shard, tensorName, config))));
            }
            GgufWriter.WriteBlocks(output, metadata, [.. extra.Select(t => t.ToData()), .. tensors]);
        }
        finally
        {
            shards.ForEach(s => s.Dispose());
        }
    }

    // One tensor as GGUF stores it: Q/K rows in llama's interleaved order, Gemma's norms with their offset added.
    private static float[] Values(ICheckpointTensors shard, string name, ModelConfig config)
    {
        using var scope = NewDisposeScope();
        var values = shard.Read(name, ScalarType.Float32);
        int heads = ModelFamily.Of(config).PermutesQk ? GgufNames.PermutedHeads(name, config) : 0;
        if (heads > 0)
            values = GgufCheckpoint.Permute(values, heads);
        if (config.NormOffset != 0 && name.EndsWith("norm.weight", StringComparison.Ordinal))
            values = values.Plus(config.NormOffset);
        return values.contiguous().data<float>().ToArray();
    }

    /// <summary>
    /// The metadata a GGUF file of <paramref name="config"/> holds (architecture keys, then the
    /// tokenizer's), and the tensors RoPE scaling travels as.
    /// </summary>
    internal static (List<KeyValuePair<string, object>> Metadata, List<GgufTensor> Extra) Metadata(ModelConfig config, string name, uint fileType, IEnumerable<KeyValuePair<string, object>> tokenizer)
    {
        var arch = ModelFamily.Of(config).GgufArchitecture;
        var metadata = new List<KeyValuePair<string, object>>
        {
            new("general.architecture", arch),
            new("general.name", name),
            new("general.file_type", fileType),
            new($"{arch}.context_length", (uint)config.MaxPositionEmbeddings),
            new($"{arch}.embedding_length", (uint)config.HiddenSize),
            new($"{arch}.block_count", (uint)config.NumLayers),
            new($"{arch}.feed_forward_length", (uint)config.IntermediateSize),
            new($"{arch}.attention.head_count", (uint)config.NumHeads),
            new($"{arch}.attention.head_count_kv", (uint)config.NumKeyValueHeads),
            new($"{arch}.attention.layer_norm_rms_epsilon", (float)config.RmsNormEps),
            new($"{arch}.rope.freq_base", (float)config.RopeTheta),
            new($"{arch}.rope.dimension_count", (uint)config.RotaryDim),
            new($"{arch}.attention.key_length", (uint)config.HeadDim),
            new($"{arch}.attention.value_length", (uint)config.HeadDim),
            new($"{arch}.vocab_size", (uint)config.VocabSize),
        };
        if (config.SlidingWindows.FirstOrDefault(w => w is not null) is int window)
            metadata.Add(new($"{arch}.attention.sliding_window", (uint)window));
        if (config.AttentionSoftcap is double attentionCap)
            metadata.Add(new($"{arch}.attn_logit_softcapping", (float)attentionCap));
        if (config.FinalSoftcap is double finalCap)
            metadata.Add(new($"{arch}.final_logit_softcapping", (float)finalCap));
        // llama.cpp scales Gemma queries by 1/sqrt(head dim) (its 27B shapes aside), and rotates Gemma 3's
        // sliding layers with a base of 10,000: other values have no key to go in.
        if (config.LocalRopeTheta is double local && local != 10000)
            throw new MirageException($"rope_local_base_freq {local} cannot be said in GGUF (llama.cpp uses 10000); this checkpoint cannot be converted yet.");
        if (config.AttentionScale is double scale && Math.Abs(scale * Math.Sqrt(config.HeadDim) - 1) > 1e-9)
            throw new MirageException($"query_pre_attn_scalar {1 / (scale * scale)} differs from head_dim {config.HeadDim}, which GGUF cannot say; this checkpoint cannot be converted yet.");
        metadata.AddRange(tokenizer);
        // Linear scaling has its keys; other rules (Llama 3.1's) travel as llama.cpp's rope_freqs divisors.
        var extra = new List<GgufTensor>();
        if (config.RopeScaling is { Type: "linear" } linear)
        {
            metadata.Add(new($"{arch}.rope.scaling.type", "linear"));
            metadata.Add(new($"{arch}.rope.scaling.factor", (float)linear.Factor));
        }
        else if (config.RopeScaling is { Type: "longrope" } longRope)
        {
            // llama.cpp's Phi-3 keys: both factor sets as tensors, the attention factor and original context as metadata.
            metadata.Add(new($"{arch}.rope.scaling.attn_factor", (float)longRope.AttentionFactor));
            metadata.Add(new($"{arch}.rope.scaling.original_context_length", (uint)longRope.OriginalMaxPositionEmbeddings));
            extra.Add(new GgufTensor("rope_factors_long.weight", longRope.LongFactors!.Select(f => (float)f).ToArray(), [config.RotaryDim / 2], GgufType.F32));
            extra.Add(new GgufTensor("rope_factors_short.weight", longRope.ShortFactors!.Select(f => (float)f).ToArray(), [config.RotaryDim / 2], GgufType.F32));
        }
        else if (config.RopeScaling is { } scaling)
        {
            extra.Add(new GgufTensor("rope_freqs.weight", scaling.AsFactors(config.RotaryDim, config.RopeTheta).Select(f => (float)f).ToArray(), [config.RotaryDim / 2], GgufType.F32));
        }

        return (metadata, extra);
    }

    // llama.cpp's order: embeddings, then layer by layer, then the output.
    private static (int, int, string) Order(string name) =>
        name.StartsWith("model.embed_tokens", StringComparison.Ordinal) ? (0, 0, name)
        : name.StartsWith("model.layers.", StringComparison.Ordinal) ? (1, int.Parse(name.Split('.')[2], System.Globalization.CultureInfo.InvariantCulture), name)
        : (2, 0, name);
}
