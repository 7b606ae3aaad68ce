using System.Text;
using Mirage.Core.Models;
using Mirage.Core.Models.Gguf;
using Mirage.Tests;

namespace Mirage.Core.Tests.Models.Gguf;

/// <summary>GGUF files written by Mirage read back exactly; damaged ones are refused with one line each.</summary>
public sealed class GgufFileTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static float[] Values(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    }

    [Fact]
    public void WrittenFiles_ReadBack_MetadataTensorsAndValues()
    {
        var path = _temp.File("model.gguf");
        var f32 = Values(6 * 32, 1);
        var q8 = Values(4 * 64, 2);
        GgufWriter.Write(path,
        [
            new("general.architecture", "llama"), new("llama.block_count", 2u), new("llama.rope.freq_base", 10000f),
            new("tokenizer.ggml.tokens", new[] { "<s>", "▁héllo", "" }), new("tokenizer.ggml.scores", new[] { 0f, -1.5f, 2f }),
            new("general.flag", true), new("general.big", 1L << 40), new("general.small", (byte)7), new("general.precise", 0.1),
        ],
        [
            new("a.weight", f32, [6, 32], GgufType.F32), new("b.weight", f32, [6, 32], GgufType.F16),
            new("c.weight", f32, [6, 32], GgufType.BF16), new("d.weight", q8, [4, 64], GgufType.Q8_0), new("e.bias", f32[..5], [5], GgufType.F32),
        ]);

        using var file = GgufFile.Open(path);
        Assert.Equal(3, file.Version);
        Assert.Equal("llama", file.Get("general.architecture", ""));
        Assert.Equal(2, file.Get("llama.block_count", 0));
        Assert.Equal(10000.0, file.Get("llama.rope.freq_base", 0.0));
        Assert.Equal(["<s>", "▁héllo", ""], file.Get<object[]>("tokenizer.ggml.tokens", []).Cast<string>());
        Assert.Equal([0.0, -1.5, 2.0], file.Get<object[]>("tokenizer.ggml.scores", []).Cast<double>());
        Assert.True(file.Get("general.flag", false));
        Assert.Equal(1L << 40, file.Get("general.big", 0L));
        Assert.Equal(7L, file.Get("general.small", 0L));
        Assert.Equal(0.1, file.Get("general.precise", 0.0));
        Assert.Contains("is a string, not Int32", Assert.Throws<InvalidCheckpointException>(() => file.Get("general.architecture", 0)).Message);

        Assert.Equal(["a.weight", "b.weight", "c.weight", "d.weight", "e.bias"], file.Tensors.Select(t => t.Name));
        Assert.All(file.Tensors, t => Assert.Equal(0, (file.DataOffset + t.Offset) % 32));
        var a = file.Tensors[0];
        Assert.Equal([32L, 6], a.Dimensions);
        Assert.Equal([6L, 32], a.Shape);
        Assert.Equal(f32, file.Dequantize(a));
        Assert.Equal(f32.Select(v => (float)(Half)v), file.Dequantize(file.Tensors[1]));
        Assert.All(file.Dequantize(file.Tensors[2]).Zip(f32), p => Assert.True(MathF.Abs(p.First - p.Second) <= MathF.Abs(p.Second) / 128));
        Assert.Equal(f32[..5], file.Dequantize(file.Tensors[4]));

        // Q8_0 blocks are ggml's own quantization of the values.
        Assert.Equal(Ggml.Quantize(GgufType.Q8_0, q8), file.Bytes(file.Tensors[3]).ToArray());
        Assert.Equal(Ggml.Dequantize(GgufType.Q8_0, Ggml.Quantize(GgufType.Q8_0, q8)), file.Dequantize(file.Tensors[3]));
    }

    /// <summary>Builds GGUF bytes field by field, so each test can break one thing.</summary>
    private sealed class Bytes
    {
        private readonly MemoryStream _stream = new();
        private readonly BinaryWriter _writer;

        public Bytes() => _writer = new BinaryWriter(_stream);

        public Bytes U32(uint v) { _writer.Write(v); return this; }

        public Bytes U64(ulong v) { _writer.Write(v); return this; }

        public Bytes Raw(params byte[] bytes) { _writer.Write(bytes); return this; }

        public Bytes Str(string s) => U64((ulong)Encoding.UTF8.GetByteCount(s)).Raw(Encoding.UTF8.GetBytes(s));

        public Bytes Header(uint version = 3, ulong tensors = 1, ulong keys = 1) => U32(0x46554747).U32(version).U64(tensors).U64(keys);

        public Bytes Key(string key = "general.architecture", string value = "llama") => Str(key).U32(8).Str(value);

        public Bytes Tensor(string name = "t", ulong[]? dims = null, uint type = 0, ulong offset = 0)
        {
            dims ??= [32];
            Str(name).U32((uint)dims.Length);
            foreach (var d in dims)
                U64(d);
            return U32(type).U64(offset);
        }

        public Bytes Data(int bytes)
        {
            while (_stream.Length % 32 != 0)
                _writer.Write((byte)0);
            return Raw(new byte[bytes]);
        }

        public byte[] ToArray() => _stream.ToArray();
    }

    public static TheoryData<string, string> Damage => new()
    {
        { "magic", "does not start with 'GGUF'" },
        { "version 1", "is GGUF version 1" },
        { "version 7", "has GGUF version 7" },
        { "truncated header", "in the middle of its header" },
        { "huge key count", "metadata keys and 1 tensors, more than its" },
        { "huge tensor count", "tensors, more than its" },
        { "string longer than the file", "longer than the rest of the file" },
        { "string over 16 MiB", "longer than any GGUF string" },
        { "invalid UTF-8 key", "not valid UTF-8" },
        { "duplicate key", "has the metadata key 'general.architecture' twice" },
        { "unknown value type", "of value type 13, which GGUF does not define" },
        { "nested array", "of value type 9 inside an array" },
        { "huge array", "more than the rest of the file can hold" },
        { "bad boolean", "with the boolean byte 2" },
        { "alignment 3", "general.alignment 3" },
        { "zero dimensions", "has 0 dimensions" },
        { "five dimensions", "has 5 dimensions" },
        { "zero-length dimension", "a dimension of 0" },
        { "unknown tensor type", "as type 99, which ggml does not define" },
        { "offset outside the file", "outside the file or not aligned" },
        { "unaligned offset", "outside the file or not aligned to 32" },
        { "row not whole blocks", "whose blocks hold 32 values, but its rows are 16 long" },
        { "truncated data", "past the end of the file: it is truncated" },
        { "duplicate tensor", "has the tensor 't' twice" },
        { "overflowing size", "too large to count" },
        { "size overflowing the end check", "past the end of the file" },
        { "overlapping tensors", "places tensor 'u' at offset 64, inside tensor 't' (0 to 128): tensors overlap" },
        { "every tensor at offset 0", "tensors overlap" },
        { "array over the element limit", "with 5,000,000 elements; at most 4,194,304 are read" },
    };

    [Fact]
    public void BlocksMadeElsewhere_AreWrittenOneTensorAtATime_AndReadAsGgmlReadsThem()
    {
        var path = _temp.File("blocks.gguf");
        var random = new Random(3);
        byte[] Blocks(int count, int blockBytes, int scaleAt)
        {
            var bytes = new byte[count * blockBytes];
            random.NextBytes(bytes);
            for (int b = 0; b < count; b++)
                BitConverter.TryWriteBytes(bytes.AsSpan(b * blockBytes + scaleAt), BitConverter.HalfToUInt16Bits((Half)0.01f));
            return bytes;
        }
        var q4 = Blocks(4, 144, 0);
        var q6 = Blocks(2, 210, 208);
        int made = 0;
        GgufWriter.WriteBlocks(path, [new("general.architecture", "llama")],
        [
            new("q4.weight", [2, 512], GgufType.Q4_K, () => { made++; return q4; }),
            new("q6.weight", [1, 512], GgufType.Q6_K, () => { made++; return q6; }),
        ]);
        Assert.Equal(2, made);

        using var file = GgufFile.Open(path);
        Assert.Equal(Ggml.Dequantize(GgufType.Q4_K, q4), file.Dequantize(file.Tensors[0]));
        Assert.Equal(Ggml.Dequantize(GgufType.Q6_K, q6), file.Dequantize(file.Tensors[1]));

        // Bytes that do not fill the declared shape are refused, naming the tensor.
        var error = Assert.Throws<ArgumentException>(() => GgufWriter.WriteBlocks(_temp.File("short.gguf"), [], [new("short.weight", [2, 512], GgufType.Q4_K, () => q4[..144])]));
        Assert.Contains("'short.weight'", error.Message);
        Assert.Contains("whole", Assert.Throws<ArgumentException>(() => GgufWriter.WriteBlocks(_temp.File("rows.gguf"), [], [new("rows.weight", [2, 100], GgufType.Q4_K, () => q4)])).Message);
    }

    [Theory]
    [MemberData(nameof(Damage))]
    public void DamagedFiles_AreRefused_WithOneLineNamingTheFile(string damage, string expected)
    {
        var bytes = damage switch
        {
            "magic" => new Bytes().U32(0x46554746).U32(3).U64(0).U64(0).ToArray(),
            "version 1" => new Bytes().Header(version: 1).Key().Tensor().Data(128).ToArray(),
            "version 7" => new Bytes().Header(version: 7).Key().Tensor().Data(128).ToArray(),
            "truncated header" => new Bytes().Header().Key().ToArray()[..30],
            "huge key count" => new Bytes().Header(keys: ulong.MaxValue / 2).Key().Tensor().Data(128).ToArray(),
            "huge tensor count" => new Bytes().Header(tensors: 1UL << 40).Key().Tensor().Data(128).ToArray(),
            "string longer than the file" => new Bytes().Header().U64(1 << 20).Raw("x"u8.ToArray()).Data(64).ToArray(),
            "string over 16 MiB" => new Bytes().Header().U64(1UL << 40).Data(64).ToArray(),
            "invalid UTF-8 key" => new Bytes().Header().U64(3).Raw(0x61, 0xFF, 0x62).U32(8).Str("llama").Tensor().Data(128).ToArray(),
            "duplicate key" => new Bytes().Header(keys: 2).Key().Key().Tensor().Data(128).ToArray(),
            "unknown value type" => new Bytes().Header().Str("k").U32(13).U32(0).Tensor().Data(128).ToArray(),
            "nested array" => new Bytes().Header().Str("k").U32(9).U32(9).U64(1).U32(8).U64(0).Tensor().Data(128).ToArray(),
            "huge array" => new Bytes().Header().Str("k").U32(9).U32(5).U64(1UL << 40).Tensor().Data(128).ToArray(),
            "bad boolean" => new Bytes().Header().Str("k").U32(7).Raw(2).Tensor().Data(128).ToArray(),
            "alignment 3" => new Bytes().Header().Str("general.alignment").U32(4).U32(3).Tensor().Data(128).ToArray(),
            "zero dimensions" => new Bytes().Header().Key().Tensor(dims: []).Data(128).ToArray(),
            "five dimensions" => new Bytes().Header().Key().Tensor(dims: [32, 1, 1, 1, 1]).Data(128).ToArray(),
            "zero-length dimension" => new Bytes().Header().Key().Tensor(dims: [32, 0]).Data(128).ToArray(),
            "unknown tensor type" => new Bytes().Header().Key().Tensor(type: 99).Data(128).ToArray(),
            "offset outside the file" => new Bytes().Header().Key().Tensor(offset: 1UL << 40).Data(128).ToArray(),
            "unaligned offset" => new Bytes().Header().Key().Tensor(offset: 4).Data(128).ToArray(),
            "row not whole blocks" => new Bytes().Header().Key().Tensor(dims: [16], type: (uint)GgufType.Q8_0).Data(128).ToArray(),
            "truncated data" => new Bytes().Header().Key().Tensor(dims: [32, 4]).Data(100).ToArray(),
            "duplicate tensor" => new Bytes().Header(tensors: 2).Key().Tensor().Tensor(offset: 128).Data(256).ToArray(),
            "overflowing size" => new Bytes().Header().Key().Tensor(dims: [1UL << 40, 1UL << 40, 1UL << 40]).Data(128).ToArray(),
            "size overflowing the end check" => new Bytes().Header().Key().Tensor(dims: [(1UL << 61) - 1]).Data(128).ToArray(),
            "overlapping tensors" => new Bytes().Header(tensors: 2).Key().Tensor().Tensor(name: "u", offset: 64).Data(256).ToArray(),
            "every tensor at offset 0" => new Bytes().Header(tensors: 3).Key().Tensor("a").Tensor("b").Tensor("c").Data(128).ToArray(),
            "array over the element limit" => new Bytes().Header().Str("k").U32(9).U32(0).U64(5_000_000).Raw(new byte[5_000_000]).Tensor().Data(128).ToArray(),
            _ => throw new ArgumentException(damage),
        };
        var path = _temp.File("damaged.gguf");
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<InvalidCheckpointException>(() => GgufFile.Open(path).Dispose());
        Assert.StartsWith($"'{path}' ", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain("\n", error.Message);
    }

    [Fact]
    public void AOnePointFourMegabyteFile_WhoseTensorsShareOneRange_IsRefusedBeforeAnyWeightIsAllocated()
    {
        // A 32-layer llama with 1024-wide Q4_K matrices: 290 tensors, all at offset 0 of 1.4 MB of data.
        // Counted as separate weights it described 160 million of them, and loading it allocated gigabytes.
        var names = new List<(string Name, ulong[] Dims, uint Type)> { ("token_embd.weight", [1024, 1024], (uint)GgufType.Q4_K), ("output_norm.weight", [1024], 0) };
        for (int layer = 0; layer < 32; layer++)
        {
            names.Add(($"blk.{layer}.attn_norm.weight", [1024], 0));
            names.Add(($"blk.{layer}.ffn_norm.weight", [1024], 0));
            foreach (var matrix in new[] { "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down" })
                names.Add(($"blk.{layer}.{matrix}.weight", [1024, 1024], (uint)GgufType.Q4_K));
        }
        var bytes = new Bytes().Header(tensors: (ulong)names.Count, keys: 5).Key()
            .Str("llama.block_count").U32(4).U32(32).Str("llama.embedding_length").U32(4).U32(1024)
            .Str("llama.feed_forward_length").U32(4).U32(1024).Str("llama.attention.head_count").U32(4).U32(16);
        foreach (var (name, dims, type) in names)
            bytes.Tensor(name, dims, type);
        var path = _temp.File("overlapping.gguf");
        File.WriteAllBytes(path, bytes.Data(1_400_000).ToArray());

        long before = GC.GetTotalAllocatedBytes(precise: true);
        var error = Assert.Throws<InvalidCheckpointException>(() => LanguageModel.Load(path).Dispose());
        Assert.Contains("tensors overlap", error.Message);
        Assert.InRange(GC.GetTotalAllocatedBytes(precise: true) - before, 0, 100L << 20);
    }

    [Theory]
    [InlineData("llama.attention.layer_norm_rms_epsilon", float.NaN)]
    [InlineData("llama.rope.freq_base", float.PositiveInfinity)]
    public void ANonFiniteNumberInTheMetadata_IsRefusedByItsKey(string key, float value)
    {
        var source = _temp.File("reader.gguf");
        GgufConverter.FromHuggingFace(SharedAssets.EmbeddedReader, source);
        var damaged = GgufCopy.Dequantized(source, _temp.File("non-finite.gguf"), replace: new Dictionary<string, object> { [key] = value });
        var error = Assert.Throws<InvalidCheckpointException>(() => LanguageModel.Load(damaged).Dispose());
        Assert.Contains($"metadata '{key}' is {(double)value}; it must be a finite number", error.Message);
    }

    [Fact]
    public void RopeFactorsOfTheWrongCount_AreRefusedBeforeTheyAreDecoded()
    {
        var source = _temp.File("reader.gguf");
        GgufConverter.FromHuggingFace(SharedAssets.EmbeddedReader, source);
        var path = GgufCopy.Dequantized(source, _temp.File("rope.gguf"), extra: [new GgufTensor("rope_freqs.weight", new float[1 << 22], [1 << 22], GgufType.F32)]);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidCheckpointException>(() => GgufCheckpoint.Open(path).Dispose());
        Assert.Contains("rope_freqs.weight holds 4,194,304 factors", error.Message);
        // 16 MiB of factors were never turned into floats.
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 8L << 20);
    }

    [Fact]
    public void RandomByteFlips_AreRefusedCleanly_OrRead()
    {
        var path = _temp.File("model.gguf");
        GgufWriter.Write(path, [new("general.architecture", "llama"), new("tokenizer.ggml.tokens", new[] { "a", "b", "c" })],
            [new("a.weight", Values(64, 3), [2, 32], GgufType.Q8_0), new("b.weight", Values(32, 4), [32], GgufType.F32)]);
        var pristine = File.ReadAllBytes(path);
        var random = new Random(20);
        int refused = 0;
        for (int trial = 0; trial < 400; trial++)
        {
            var bytes = (byte[])pristine.Clone();
            for (int flips = random.Next(1, 4); flips > 0; flips--)
                bytes[random.Next(Math.Min(bytes.Length, 256))] ^= (byte)(1 << random.Next(8));
            File.WriteAllBytes(path, bytes);
            try
            {
                using var file = GgufFile.Open(path);
                foreach (var tensor in file.Tensors)
                    file.Dequantize(tensor);
            }
            catch (InvalidCheckpointException)
            {
                refused++;
            }
        }
        Assert.True(refused > 50, $"{refused} of 400 refused");
    }
}
