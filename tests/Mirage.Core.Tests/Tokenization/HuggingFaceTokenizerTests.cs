using System.Text.Json.Nodes;
using Mirage.Core.Tokenization;
using Mirage.Tests;

namespace Mirage.Core.Tests.Tokenization;

/// <summary>tokenizer.json files in both BPE styles, written by the tests.</summary>
public sealed class HuggingFaceTokenizerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private TextTokenizer ByteLevel()
    {
        TokenizerJsonWriter.WriteByteLevel(_temp.Path, [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("l", "l")], ["<|begin|>", "<|end|>"], "<|begin|>", "<|end|>");
        return TextTokenizer.Load(_temp.Path);
    }

    [Theory]
    [InlineData("hello the world")]
    [InlineData("héllo  世界 🎉\n\ttabs\r\nand 123456 'quotes' don't")]
    [InlineData("")]
    public void ByteLevel_AnyText_RoundTripsAndOffsetsCoverIt(string text)
    {
        var tokenizer = ByteLevel();
        var tokens = tokenizer.Encode(text, addSpecialTokens: false);
        Assert.Equal(text, tokenizer.Decode(tokens.Select(t => t.Id)));
        // Every character belongs to exactly the tokens that produced its bytes, in order.
        int position = 0;
        foreach (var token in tokens.Where(t => t.End > t.Start))
        {
            Assert.True(token.Start >= position - 1, $"token {token.Piece} at {token.Start} goes backwards from {position}");
            position = Math.Max(position, token.End);
        }
        Assert.Equal(text.Length, position);
    }

    [Fact]
    public void ByteLevel_AppliesMergesAndSpecialTokens()
    {
        var tokenizer = ByteLevel();
        Assert.Equal("bpe-byte-level", tokenizer.Kind);
        var tokens = tokenizer.Encode("<|begin|>ok the hill", addSpecialTokens: false);
        Assert.Equal(["<|begin|>", "o", "k", "Ġthe", "Ġ", "h", "i", "ll"], tokens.Select(t => t.Piece));
        Assert.Equal("the", "<|begin|>ok the hill"[tokens[3].Start..tokens[3].End]);
        Assert.Equal("ok the hill", tokenizer.Decode(tokens.Select(t => t.Id)));
        Assert.Equal("<|begin|>ok the hill", tokenizer.Decode(tokens.Select(t => t.Id), skipSpecialTokens: false));
    }

    [Fact]
    public void ByteLevel_BosFromConfig_IsAddedWithAnEmptySpan()
    {
        var tokenizer = ByteLevel();
        var bos = tokenizer.IdOf("<|begin|>");
        Assert.Equal(bos, tokenizer.BosId);
        Assert.Equal([tokenizer.IdOf("<|end|>")!.Value], tokenizer.EosIds);
        var first = tokenizer.Encode("hi")[0];
        Assert.Equal((bos!.Value, 0, 0), (first.Id, first.Start, first.End));
    }

    [Fact]
    public void ByteLevel_SplitRegexFromPreTokenizer_IsUsed()
    {
        // Llama 3 style: a Split pre-tokenizer with its own regex, then ByteLevel without regex.
        ByteLevel();
        var path = _temp.File("tokenizer.json");
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        root["pre_tokenizer"] = JsonNode.Parse("""
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}|[^\\p{N}]+"}, "behavior": "Isolated", "invert": false},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
            """);
        File.WriteAllText(path, root.ToJsonString());
        var tokens = TextTokenizer.Load(_temp.Path).Encode("ab12345", addSpecialTokens: false);
        // The custom split groups digits by three; GPT-2's default would keep "12345" whole.
        Assert.Equal(["a", "b", "1", "2", "3", "4", "5"], tokens.Select(t => t.Piece));
        Assert.Equal([(2, 3), (3, 4), (4, 5), (5, 6), (6, 7)], tokens.Skip(2).Select(t => (t.Start, t.End)));
    }

    // Llama 2's fast-tokenizer layout: Prepend/Replace normalizer, BPE with byte fallback.
    private TextTokenizer Metaspace()
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++)
            vocab[$"<0x{b:X2}>"] = 3 + b;
        string[] pieces = ["▁", "h", "e", "l", "o", "w", "r", "d", "▁h", "▁he", "ll", "▁hell", "▁hello"];
        foreach (var piece in pieces)
            vocab[piece] = vocab.Count;
        var json = new JsonObject
        {
            ["added_tokens"] = JsonNode.Parse("""[{"id":0,"content":"<unk>","special":true},{"id":1,"content":"<s>","special":true},{"id":2,"content":"</s>","special":true}]"""),
            ["normalizer"] = JsonNode.Parse("""{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}"""),
            ["pre_tokenizer"] = null,
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["unk_token"] = "<unk>", ["fuse_unk"] = true, ["byte_fallback"] = true, ["vocab"] = vocab,
                ["merges"] = JsonNode.Parse("""["▁ h", "▁h e", "l l", "▁he ll", "▁hell o"]"""),
            },
        };
        File.WriteAllText(_temp.File("tokenizer.json"), json.ToJsonString());
        File.WriteAllText(_temp.File("tokenizer_config.json"), """{"add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>"}""");
        return TextTokenizer.Load(_temp.Path);
    }

    [Fact]
    public void Metaspace_EncodesLikeSentencePiece_WithOffsetsIntoTheOriginal()
    {
        var tokenizer = Metaspace();
        Assert.Equal("bpe-sentencepiece", tokenizer.Kind);
        const string text = "hello world";
        var tokens = tokenizer.Encode(text);
        Assert.Equal(["<s>", "▁hello", "▁", "w", "o", "r", "l", "d"], tokens.Select(t => t.Piece));
        Assert.Equal(["", "hello", " ", "w", "o", "r", "l", "d"], tokens.Select(t => text[t.Start..t.End]));
        Assert.Equal(text, tokenizer.Decode(tokens.Select(t => t.Id)));
    }

    [Fact]
    public void Metaspace_UnknownCharacters_FallBackToUtf8Bytes()
    {
        var tokenizer = Metaspace();
        const string text = "hé 日";
        var tokens = tokenizer.Encode(text, addSpecialTokens: false);
        Assert.Equal(["▁h", "<0xC3>", "<0xA9>", "▁", "<0xE6>", "<0x97>", "<0xA5>"], tokens.Select(t => t.Piece));
        Assert.Equal((1, 2), (tokens[1].Start, tokens[1].End));
        Assert.Equal((3, 4), (tokens[4].Start, tokens[4].End));
        Assert.Equal(text, tokenizer.Decode(tokens.Select(t => t.Id)));
    }

    [Fact]
    public void UnsupportedModelType_SaysWhatIsSupported()
    {
        File.WriteAllText(_temp.File("tokenizer.json"), """{"model": {"type": "WordPiece", "vocab": {}}}""");
        var error = Assert.Throws<InvalidCheckpointException>(() => TextTokenizer.Load(_temp.Path));
        Assert.Contains("WordPiece", error.Message);
        Assert.Contains("only BPE", error.Message);
    }
}
