using Mirage.Core.Models;
using Mirage.Core.Models.Gguf;
using Mirage.Tests;

namespace Mirage.Core.Tests.Models.Gguf;

/// <summary>Hugging Face folders converted to GGUF load back into the same model: weights, configuration and tokenizer.</summary>
public sealed class GgufConversionTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string> Architectures => new("LlamaForCausalLM", "Qwen2ForCausalLM");

    [Theory]
    [MemberData(nameof(Architectures))]
    public void AConvertedRandomCheckpoint_GivesTheSameLogits_AndTokens(string architecture)
    {
        // Rows of 64 and 96 so Q8_0 blocks apply; GQA so K is permuted with its own head count.
        var config = TinyCheckpoint.Config(architecture) with { HiddenSize = 64, IntermediateSize = 96, HeadDim = 16 };
        var directory = TinyCheckpoint.Write(_temp, config);
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
        var dequantized = _temp.File($"{architecture}-dequantized.gguf");
        using (var file = GgufFile.Open(q8))
        {
            Assert.Contains(file.Tensors, t => t.Type == GgufType.Q8_0);
            GgufWriter.Write(dequantized, file.Metadata.Select(p => new KeyValuePair<string, object>(p.Key, Plain(p.Value))),
                file.Tensors.Select(t => new GgufTensor(t.Name, file.Dequantize(t), t.Shape, GgufType.F32)).ToList());
        }
        using var quantized = TinyCheckpoint.Load(q8, TorchSharp.torch.ScalarType.Float32);
        using var reference = TinyCheckpoint.Load(dequantized, TorchSharp.torch.ScalarType.Float32);
        Assert.Equal(0, TinyCheckpoint.MaxDifference(TinyCheckpoint.Logits(reference, ids), TinyCheckpoint.Logits(quantized, ids)));
        Assert.NotEqual(0, TinyCheckpoint.MaxDifference(TinyCheckpoint.Logits(original, ids), TinyCheckpoint.Logits(quantized, ids)));
    }

    // Metadata as read, in the types the writer takes.
    private static object Plain(object value) => value switch
    {
        object[] items when items.All(i => i is string) => items.Cast<string>().ToArray(),
        object[] items when items.All(i => i is long) => items.Select(i => (int)(long)i).ToArray(),
        object[] items => items.Select(i => (float)Convert.ToDouble(i, System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
        _ => value,
    };

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
}
