using Mirage.Core.Models;
using Mirage.Core.Models.Gguf;
using Mirage.Tests;

namespace Mirage.Core.Tests.Models.Gguf;

/// <summary>Hugging Face folders converted to GGUF load back into the same model: weights, configuration and tokenizer.</summary>
public sealed class GgufConversionTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string> Architectures() => new("LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Phi3ForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM");

    // Rows of 64 and 96 so Q8_0 blocks apply; GQA so K is permuted with its own head count; Gemma 2
    // with both soft-caps and a 4-token window on its sliding layers, so 12 tokens cross it; Gemma 3
    // with six layers (five sliding with the local RoPE base, one global with its own).
    private static ModelConfig SmallConfig(string architecture)
    {
        var config = TinyCheckpoint.Config(architecture) with { HiddenSize = 64, IntermediateSize = 96, HeadDim = 16 };
        return architecture switch
        {
            "Gemma2ForCausalLM" => config with { AttentionSoftcap = 2.5, FinalSoftcap = 3, SlidingWindows = [4, null], HiddenActivation = "gelu_pytorch_tanh" },
            "Gemma3ForCausalLM" => config with { NumLayers = 6, SlidingWindows = [4, 4, 4, 4, 4, null], RopeTheta = 1_000_000, HiddenActivation = "gelu_pytorch_tanh" },
            _ => config,
        };
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void AConvertedRandomCheckpoint_GivesTheSameLogits_AndTokens(string architecture)
    {
        var directory = TinyCheckpoint.Write(_temp, SmallConfig(architecture));
        var gguf = _temp.File($"{architecture}.gguf");
        GgufConverter.FromHuggingFace(directory, gguf);

        using var original = TinyCheckpoint.Load(directory, TorchSharp.torch.ScalarType.Float32);
        using var converted = TinyCheckpoint.Load(gguf, TorchSharp.torch.ScalarType.Float32);
        Assert.Equal(original.Config with { TorchDtype = null, EosTokenIds = [], SlidingWindows = [] }, converted.Config with { TorchDtype = null, EosTokenIds = [], SlidingWindows = [] });
        Assert.Equal(original.Config.SlidingWindows, converted.Config.SlidingWindows);
        var ids = TinyCheckpoint.RandomIds(20, 9);
        Assert.True(TinyCheckpoint.MaxDifference(TinyCheckpoint.Logits(original, ids), TinyCheckpoint.Logits(converted, ids)) < 1e-5);
        foreach (var text in new[] { "the cat sat", "  Théo, 3.5 km!\nthe end" })
            Assert.Equal(original.Tokenizer.Encode(text), converted.Tokenizer.Encode(text));
        Assert.Equal(original.Tokenizer.BosId, converted.Tokenizer.BosId);
        Assert.Equal(original.Tokenizer.EosIds, converted.Tokenizer.EosIds);

        // Q8_0: the model Mirage runs is exactly the dequantized one, an F32 file of the same values.
        var q8 = _temp.File($"{architecture}-q8.gguf");
        GgufConverter.FromHuggingFace(directory, q8, GgufType.Q8_0);
        using (var file = GgufFile.Open(q8))
            Assert.Contains(file.Tensors, t => t.Type == GgufType.Q8_0);
        var dequantized = GgufCopy.Dequantized(q8, _temp.File($"{architecture}-dequantized.gguf"));
        using var quantized = TinyCheckpoint.Load(q8, TorchSharp.torch.ScalarType.Float32);
        using var reference = TinyCheckpoint.Load(dequantized, TorchSharp.torch.ScalarType.Float32);
        Assert.Equal(0, TinyCheckpoint.MaxDifference(TinyCheckpoint.Logits(reference, ids), TinyCheckpoint.Logits(quantized, ids)));
        Assert.NotEqual(0, TinyCheckpoint.MaxDifference(TinyCheckpoint.Logits(original, ids), TinyCheckpoint.Logits(quantized, ids)));
    }

    // How close llama.cpp's float32 logits come to Mirage's, relative to the largest: about 1e-6 is
    // measured for the SiLU models; Gemma's GeGLU differs a little more (ggml evaluates GELU through
    // a float16 table, GGML_GELU_FP16): 2.1e-4 measured, up to 2.8e-4 on the 256-wide shapes.
    private static double Float32Tolerance(string architecture) => architecture.StartsWith("Gemma", StringComparison.Ordinal) ? 5e-4 : 1e-4;

    // llama.cpp's last-position logits against Mirage's, relative to the largest of Mirage's.
    private static void AssertClose(double[,] mirage, float[] llamaCpp, double tolerance, string what)
    {
        int last = mirage.GetLength(0) - 1;
        double scale = Enumerable.Range(0, llamaCpp.Length).Max(j => Math.Abs(mirage[last, j]));
        double worst = Enumerable.Range(0, llamaCpp.Length).Max(j => Math.Abs(mirage[last, j] - llamaCpp[j]));
        Assert.True(worst <= tolerance * scale, $"{what}: llama.cpp differs by {worst:G3} (logits up to {scale:G3})");
    }

    // An F32 copy of a GGUF file holding its dequantized weights (metadata back in llama.cpp's types: u32 counts, f32 numbers).
    [Fact]
    public void Stories260K_ConvertedToGguf_TokenizesAndContinuesTheStoryTheSame()
    {
        var gguf = _temp.File("stories260K.gguf");
        GgufConverter.FromHuggingFace(SharedAssets.Stories260KHf, gguf, GgufType.Q8_0);
        using var original = LanguageModel.Load(SharedAssets.Stories260KHf);
        using var converted = LanguageModel.Load(gguf);
        Assert.Equal("stories260K", converted.ModelId);
        Assert.Equal("sentencepiece", converted.Tokenizer.Kind);
        // (stories260K's own model collapses repeated spaces; GGUF, as llama.cpp, keeps them, so single spaces here.)
        foreach (var text in new[] { "Once upon a time", "Lily and Ben went to the park. ✨ <s> done" })
            Assert.Equal(original.Tokenizer.Encode(text), converted.Tokenizer.Encode(text));
        var prompt = converted.Tokenizer.EncodeIds("Once upon a time");
        var story = converted.Generate(prompt, new GenerationOptions { MaxTokens = 16 }).Text;
        Assert.StartsWith(", there was a little girl named Lily. She loved to play", story);
    }

    [Fact]
    public void AnUnsupportedArchitectureOrTokenizer_IsRefusedByName()
    {
        var path = _temp.File("gpt.gguf");
        GgufWriter.Write(path, [new("general.architecture", "gpt2")], [new("token_embd.weight", new float[64], [2, 32], GgufType.F32)]);
        Assert.Contains("holds a 'gpt2' model; GGUF architectures Mirage runs: llama, qwen2", Assert.Throws<InvalidCheckpointException>(() => LanguageModel.Load(path)).Message);
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void LlamaCpp_ReadsTheConvertedFile_AndComputesTheSameLogits(string architecture)
    {
        var directory = TinyCheckpoint.Write(_temp, SmallConfig(architecture));
        var gguf = _temp.File($"{architecture}.gguf");
        GgufConverter.FromHuggingFace(directory, gguf);
        using var model = TinyCheckpoint.Load(directory, TorchSharp.torch.ScalarType.Float32);
        foreach (var seed in new[] { 1, 2 })
        {
            var ids = TinyCheckpoint.RandomIds(12, seed);
            AssertClose(TinyCheckpoint.Logits(model, ids), LlamaCpp.LastLogits(gguf, ids), Float32Tolerance(architecture), $"{architecture}, seed {seed}");
        }
    }

    public static TheoryData<string, string> Quantizations()
    {
        var data = new TheoryData<string, string>();
        foreach (var architecture in Architectures().Select(a => a.Data))
            foreach (var quantization in new[] { "Q8_0", "Q4_K_M", "Q6_K" })
                data.Add(architecture, quantization);
        return data;
    }

    [Theory]
    [MemberData(nameof(Quantizations))]
    public void FilesLlamaCppQuantized_ReadAsTheirBlocks_AndRunCloseToLlamaCpp(string architecture, string quantization)
    {
        // Rows of 256 and 512 so k-quants really apply.
        var config = SmallConfig(architecture) with { HiddenSize = 256, IntermediateSize = 512, HeadDim = 64 };
        var directory = TinyCheckpoint.Write(_temp, config, new RandomCheckpointOptions { InitStd = 0.05, PerturbNormsAndBiases = true });
        var f32 = _temp.File($"{architecture}-f32.gguf");
        GgufConverter.FromHuggingFace(directory, f32);
        var quantized = _temp.File($"{architecture}-{quantization}.gguf");
        LlamaCpp.Quantize(f32, quantized, quantization);

        using (var file = GgufFile.Open(quantized))
        {
            var types = file.Tensors.Select(t => t.Type).Distinct().ToList();
            Assert.Contains(quantization switch { "Q8_0" => GgufType.Q8_0, "Q6_K" => GgufType.Q6_K, _ => GgufType.Q4_K }, types);
            // Every tensor reads as exactly what ggml's own dequantizer makes of its blocks.
            foreach (var tensor in file.Tensors.Where(t => t.Type is not (GgufType.F32 or GgufType.F16)))
            {
                var expected = Ggml.Dequantize(tensor.Type, file.Bytes(tensor).ToArray());
                Assert.Equal(expected, file.Dequantize(tensor));
                // Straight into a torch tensor, a few rows per step (so several steps and a short last one):
                // the same values in float32, and those values rounded once in bfloat16.
                using var direct = file.Dequantize(tensor, TorchSharp.torch.ScalarType.Float32, chunkValues: 3 * tensor.Dimensions[0]);
                Assert.Equal(tensor.Shape, direct.shape);
                Assert.Equal(expected, direct.data<float>().ToArray());
                using var rounded = file.Dequantize(tensor, TorchSharp.torch.ScalarType.BFloat16, chunkValues: 3 * tensor.Dimensions[0]);
                using var reference = TorchSharp.torch.tensor(expected).to(TorchSharp.torch.ScalarType.BFloat16);
                Assert.True(rounded.flatten().eq(reference).all().item<bool>(), tensor.Name);
            }
        }

        using var model = TinyCheckpoint.Load(quantized, TorchSharp.torch.ScalarType.Float32);
        var ids = TinyCheckpoint.RandomIds(12, 4);
        var mirage = TinyCheckpoint.Logits(model, ids);
        // llama.cpp rounds activations to 8 bits in its quantized matmuls, Mirage computes in float32
        // on the same weights: measured 1.3% to 3.1% of the largest logit over the six architectures
        // and three types (Llama: 2.1% Q8_0, 2.6% Q4_K_M, 2.9% Q6_K).
        AssertClose(mirage, LlamaCpp.LastLogits(quantized, ids), 0.04, $"{architecture} {quantization}");

        // That gap is llama.cpp's activation rounding alone: on an F32 file of the dequantized weights
        // (no activation rounding) llama.cpp computes what Mirage computes from the quantized file.
        var dequantized = GgufCopy.Dequantized(quantized, _temp.File($"{architecture}-{quantization}-dequantized.gguf"));
        AssertClose(mirage, LlamaCpp.LastLogits(dequantized, ids), Float32Tolerance(architecture), $"{architecture} {quantization} on the dequantized weights");
    }

    [Fact]
    public void Stories260K_QuantizedByLlamaCpp_StillTellsItsStory()
    {
        var f32 = _temp.File("stories260K-f32.gguf");
        GgufConverter.FromHuggingFace(SharedAssets.Stories260KHf, f32);
        var quantized = _temp.File("stories260K-Q4_K_M.gguf");
        LlamaCpp.Quantize(f32, quantized, "Q4_K_M");
        using var model = LanguageModel.Load(quantized);
        Assert.Contains("GGUF v3", model.SourceFormat);
        var story = model.Generate(model.Tokenizer.EncodeIds("Once upon a time"), new GenerationOptions { MaxTokens = 16 }).Text;
        Assert.StartsWith(", there was a little girl named Lily. She loved to play", story);
    }

    [Fact]
    public void Phi3Checkpoints_StoreFusedProjections_AsTheFamilyDoes_AndGgufKeepsThemFused()
    {
        var config = TinyCheckpoint.Config("Phi3ForCausalLM") with { HiddenSize = 64, IntermediateSize = 96, HeadDim = 16 };
        var directory = TinyCheckpoint.Write(_temp, config);
        using (var weights = Mirage.Core.Models.Safetensors.SafetensorsFile.Open(Path.Combine(directory, "model.safetensors")))
        {
            Assert.Equal([4 * 16 + 2 * 2 * 16, 64L], weights.Shapes["model.layers.0.self_attn.qkv_proj.weight"]);
            Assert.Equal([2 * 96, 64L], weights.Shapes["model.layers.1.mlp.gate_up_proj.weight"]);
            Assert.DoesNotContain(weights.Shapes.Keys, k => k.Contains("q_proj", StringComparison.Ordinal) || k.Contains(".up_proj", StringComparison.Ordinal));
        }
        var gguf = _temp.File("phi3.gguf");
        GgufConverter.FromHuggingFace(directory, gguf);
        using var file = GgufFile.Open(gguf);
        Assert.Equal([64L, 4 * 16 + 2 * 2 * 16], file.Tensors.Single(t => t.Name == "blk.0.attn_qkv.weight").Dimensions);
        Assert.Equal([64L, 192], file.Tensors.Single(t => t.Name == "blk.0.ffn_up.weight").Dimensions);
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("linear")]
    public void RopeScaling_TravelsThroughGguf_AsLlamaCppReadsIt(string type)
    {
        // Llama 3.1's rule becomes llama.cpp's rope_freqs divisors; linear scaling its metadata keys.
        var scaling = type == "llama3" ? new RopeScaling("llama3", 8, 1, 4, 16) : new RopeScaling("linear", 4);
        var directory = TinyCheckpoint.Write(_temp, SmallConfig("LlamaForCausalLM") with { RopeScaling = scaling });
        var gguf = _temp.File($"rope-{type}.gguf");
        GgufConverter.FromHuggingFace(directory, gguf);
        using (var file = GgufFile.Open(gguf))
            Assert.Equal(type == "llama3", file.Tensors.Any(t => t.Name == "rope_freqs.weight"));

        using var original = TinyCheckpoint.Load(directory, TorchSharp.torch.ScalarType.Float32);
        using var converted = TinyCheckpoint.Load(gguf, TorchSharp.torch.ScalarType.Float32);
        var ids = TinyCheckpoint.RandomIds(12, 6);
        var expected = TinyCheckpoint.Logits(original, ids);
        double scale = expected.Cast<double>().Max(Math.Abs);
        Assert.True(TinyCheckpoint.MaxDifference(expected, TinyCheckpoint.Logits(converted, ids)) <= 1e-5 * scale);
        AssertClose(expected, LlamaCpp.LastLogits(gguf, ids), 1e-4, $"rope {type}");
        // And the scaling matters: without it the logits move.
        using var unscaled = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, SmallConfig("LlamaForCausalLM"), name: "unscaled"), TorchSharp.torch.ScalarType.Float32);
        Assert.True(TinyCheckpoint.MaxDifference(expected, TinyCheckpoint.Logits(unscaled, ids)) > 1e-3 * scale);
    }

    // Phi-4-mini's shape of Phi-3: three quarters of each head rotated, LongRoPE factors for 6 frequencies.
    private static ModelConfig LongRopePhi3(bool sameFactors = false)
    {
        var random = new Random(3);
        var shortFactors = Enumerable.Range(0, 6).Select(_ => 1 + random.NextDouble()).ToArray();
        var longFactors = sameFactors ? shortFactors : Enumerable.Range(0, 6).Select(_ => 2 + 3 * random.NextDouble()).ToArray();
        return SmallConfig("Phi3ForCausalLM") with
        {
            PartialRotaryFactor = 0.75,
            MaxPositionEmbeddings = 4096,
            RopeScaling = new RopeScaling("longrope", 8, OriginalMaxPositionEmbeddings: 512)
            {
                ShortFactors = shortFactors, LongFactors = longFactors, AttentionFactor = Math.Sqrt(1 + Math.Log(8) / Math.Log(512)),
            },
        };
    }

    [Fact]
    public void Phi3LongRopeAndPartialRotary_RunAsLlamaCppRunsThem_AndTheLongFactorsApplyPastTheOriginalContext()
    {
        var directory = TinyCheckpoint.Write(_temp, LongRopePhi3(), name: "longrope");
        var gguf = _temp.File("phi3-longrope.gguf");
        GgufConverter.FromHuggingFace(directory, gguf);
        using var original = TinyCheckpoint.Load(directory, TorchSharp.torch.ScalarType.Float32);
        Assert.Equal((12, "longrope"), (original.Config.RotaryDim, original.Config.RopeScaling!.Type));
        using var converted = TinyCheckpoint.Load(gguf, TorchSharp.torch.ScalarType.Float32);
        var ids = TinyCheckpoint.RandomIds(12, 8);
        var expected = TinyCheckpoint.Logits(original, ids);
        double scale = expected.Cast<double>().Max(Math.Abs);
        Assert.True(TinyCheckpoint.MaxDifference(expected, TinyCheckpoint.Logits(converted, ids)) <= 1e-5 * scale);
        // llama.cpp's context (padded to 256) is inside the original 512, so it uses the short factors, as Mirage does for 12 tokens.
        AssertClose(expected, LlamaCpp.LastLogits(gguf, ids), 1e-4, "phi3 longrope");

        // The same weights with long factors equal to the short ones: no change below 512 positions, a change beyond.
        using var flat = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, LongRopePhi3(sameFactors: true), name: "flat"), TorchSharp.torch.ScalarType.Float32);
        Assert.Equal(0, TinyCheckpoint.MaxDifference(expected, TinyCheckpoint.Logits(flat, ids)));
        var longer = TinyCheckpoint.RandomIds(520, 9);
        Assert.True(TinyCheckpoint.MaxDifference(TinyCheckpoint.Logits(original, longer), TinyCheckpoint.Logits(flat, longer)) > 1e-4);
    }
}
