using System.Buffers.Binary;
using Mirage.Core.Models;
using Mirage.Core.Models.Gguf;
using Mirage.Core.Tokenization;

namespace Mirage.Benchmarks;

/// <summary>
/// A GGUF file of random weights written straight as Q4_K_M's block types, one tensor at a time:
/// Q4_K matrices, Q6_K for the output and for attention values and MLP down-projections in the
/// layers where llama.cpp's Q4_K_M gives them more bits, F32 norms. For shapes whose float32 copy
/// would not fit in memory (an 8B model is 32 GB in float32, 4.9 GB this way).
/// </summary>
internal static class RandomQuantizedGguf
{
    private const uint MostlyQ4KM = 15; // llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_K_M

    public static void Write(string path, ModelConfig config, string tokenizerDirectory, int seed = 1234)
    {
        SyntheticTokenizer.Write(tokenizerDirectory, config.VocabSize, bos: true);
        var tokenizer = TextTokenizer.Load(tokenizerDirectory, config.EosTokenIds, config.BosTokenId);
        var (metadata, extra) = GgufConverter.Metadata(config, Path.GetFileNameWithoutExtension(path), MostlyQ4KM,
            GgufTokenizer.Metadata(tokenizerDirectory, tokenizer, config.VocabSize));
        var random = new Random(seed);
        var tensors = new List<GgufTensorData>();
        void Add(string name, long[] shape, GgufType type) =>
            tensors.Add(new GgufTensorData(GgufNames.ToGguf(name, config) ?? throw new InvalidOperationException($"No GGUF name for {name}."), shape, type, () => Blocks(type, shape, random)));

        long c = config.HiddenSize, kv = (long)config.NumKeyValueHeads * config.HeadDim, q = (long)config.NumHeads * config.HeadDim, ff = config.IntermediateSize;
        Add("model.embed_tokens.weight", [config.VocabSize, c], GgufType.Q4_K);
        for (int i = 0; i < config.NumLayers; i++)
        {
            var more = MoreBits(i, config.NumLayers) ? GgufType.Q6_K : GgufType.Q4_K;
            var layer = $"model.layers.{i}.";
            Add(layer + "input_layernorm.weight", [c], GgufType.F32);
            Add(layer + "self_attn.q_proj.weight", [q, c], GgufType.Q4_K);
            Add(layer + "self_attn.k_proj.weight", [kv, c], GgufType.Q4_K);
            Add(layer + "self_attn.v_proj.weight", [kv, c], more);
            Add(layer + "self_attn.o_proj.weight", [c, q], GgufType.Q4_K);
            Add(layer + "post_attention_layernorm.weight", [c], GgufType.F32);
            Add(layer + "mlp.gate_proj.weight", [ff, c], GgufType.Q4_K);
            Add(layer + "mlp.up_proj.weight", [ff, c], GgufType.Q4_K);
            Add(layer + "mlp.down_proj.weight", [c, ff], more);
        }
        Add("model.norm.weight", [c], GgufType.F32);
        if (!config.TieWordEmbeddings)
            Add("lm_head.weight", [config.VocabSize, c], GgufType.Q6_K);
        GgufWriter.WriteBlocks(path, metadata, [.. extra.Select(t => t.ToData()), .. tensors]);
    }

    // llama.cpp's use_more_bits: the first and last eighth of the layers, and every third between.
    private static bool MoreBits(int layer, int layers) => layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    // Random quants under scales that keep weights within about +-0.1 and centred, as trained ones are.
    private static byte[] Blocks(GgufType type, long[] shape, Random random)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (type == GgufType.F32)
            return System.Runtime.InteropServices.MemoryMarshal.AsBytes(Enumerable.Repeat(1f, (int)count).ToArray().AsSpan()).ToArray();
        var info = GgufTypeInfo.Of(type);
        var bytes = new byte[count / info.BlockSize * info.BlockBytes];
        random.NextBytes(bytes);
        for (long at = 0; at < bytes.Length; at += info.BlockBytes)
        {
            var block = bytes.AsSpan((int)at, info.BlockBytes);
            if (type == GgufType.Q4_K)
            {
                // d * scale * q - dmin * min, q in 0..15 and scale, min in 0..63: dmin centres the values.
                BinaryPrimitives.WriteUInt16LittleEndian(block, BitConverter.HalfToUInt16Bits((Half)1e-4f));
                BinaryPrimitives.WriteUInt16LittleEndian(block[2..], BitConverter.HalfToUInt16Bits((Half)7.5e-4f));
            }
            else
            {
                // Q6_K: d * scale * (q - 32), scales int8.
                BinaryPrimitives.WriteUInt16LittleEndian(block[208..], BitConverter.HalfToUInt16Bits((Half)2e-5f));
            }
        }
        return bytes;
    }
}
