using Mirage.Core.Models.Gguf;
using Mirage.Core.Tokenization;
using Mirage.Tests;

namespace Mirage.Core.Tests.Tokenization;

/// <summary>Tokenizers described by GGUF metadata: the gpt2 model's pre-tokenizers split text as llama.cpp's do.</summary>
public sealed class GgufTokenizerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private TextTokenizer Tokenizer(string pre)
    {
        // The 256 byte symbols, then merges that would join "1234" whole if nothing split it.
        var tokens = TokenizerJsonWriter.ByteToChar.Select(c => c.ToString()).Concat(["12", "123", "1234", "<s>"]).ToArray();
        var path = _temp.File($"{pre}.gguf");
        GgufWriter.Write(path,
        [
            new("general.architecture", "llama"), new("tokenizer.ggml.model", "gpt2"), new("tokenizer.ggml.pre", pre),
            new("tokenizer.ggml.tokens", tokens), new("tokenizer.ggml.token_type", tokens.Select((_, i) => i == tokens.Length - 1 ? 3 : 1).ToArray()),
            new("tokenizer.ggml.merges", new[] { "1 2", "12 3", "123 4" }), new("tokenizer.ggml.bos_token_id", (uint)(tokens.Length - 1)),
        ], []);
        using var file = GgufFile.Open(path);
        return GgufTokenizer.Read(file);
    }

    [Theory]
    [InlineData("gpt-2", " |1234|")]
    [InlineData("default", " |1234|")]
    [InlineData("llama-bpe", " |123|4|")]
    [InlineData("qwen2", " |1|2|3|4|")]
    public void PreTokenizers_SplitDigitsAsLlamaCppDoes(string pre, string expected)
    {
        const string text = "a 1234!";
        var tokens = Tokenizer(pre).Encode(text, addSpecialTokens: false);
        // The pieces between "a" and "!" (the space is its own: no merge joins it to a digit), each by its exact span.
        Assert.Equal(expected, string.Concat(tokens.Skip(1).SkipLast(1).Select(t => text[t.Start..t.End] + "|")));
        Assert.Equal("!", text[tokens[^1].Start..tokens[^1].End]);
    }

    [Fact]
    public void AnUnknownPreTokenizer_IsRefusedListingTheKnownOnes()
    {
        var error = Assert.Throws<InvalidCheckpointException>(() => Tokenizer("deepseek-llm"));
        Assert.Contains("the 'deepseek-llm' pre-tokenizer; supported: default, gpt-2, llama-bpe, qwen2", error.Message);
    }
}
