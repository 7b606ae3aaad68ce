using Mirage.Core.Tokenization;
using Mirage.Tests;

namespace Mirage.Core.Tests.Tokenization;

/// <summary>The real stories260K SentencePiece model (512 pieces, byte fallback).</summary>
public sealed class SentencePieceTokenizerTests
{
    private static TextTokenizer Load() => TextTokenizer.Load(SharedAssets.Stories260KHf);

    [Fact]
    public void Load_ReadsBosEosAndKind()
    {
        var tokenizer = Load();
        Assert.Equal("sentencepiece", tokenizer.Kind);
        Assert.Equal(512, tokenizer.VocabSize);
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal([2], tokenizer.EosIds);
        Assert.True(tokenizer.AddBos);
    }

    [Fact]
    public void Encode_OffsetsPointAtEachWordInTheOriginalText()
    {
        const string text = "Once upon a time";
        var tokens = Load().Encode(text);
        Assert.Equal((0, 0), (tokens[0].Start, tokens[0].End)); // BOS
        Assert.Equal(["Once", "upon", "a", "time"], tokens.Skip(1).Select(t => text[t.Start..t.End]));
    }

    [Fact]
    public void Encode_OffsetsSurviveCollapsedSpacesAndSplitWords()
    {
        const string text = "Lily and  Ben went";
        var tokens = Load().Encode(text, addSpecialTokens: false);
        Assert.Equal(["Lily", "and", "B", "en", "w", "ent"], tokens.Select(t => text[t.Start..t.End]));
    }

    [Fact]
    public void Encode_ByteFallback_CoversTheCharacterOnceAndRoundTrips()
    {
        const string text = "a ü 日 b";
        var tokenizer = Load();
        var tokens = tokenizer.Encode(text, addSpecialTokens: false);
        Assert.Contains(tokens, t => t.Piece == "<0xC3>");
        var covered = tokens.Where(t => t.End > t.Start).Select(t => text[t.Start..t.End]).ToList();
        Assert.Equal(["a", "ü", "日", "b"], covered.Where(s => s.Trim().Length > 0));
        Assert.Equal(text, tokenizer.Decode(tokens.Select(t => t.Id)));
    }

    [Fact]
    public void DecodeContinuation_KeepsTheLeadingSpace()
    {
        var tokenizer = Load();
        var prompt = tokenizer.EncodeIds("The little dog was sad because");
        var continuation = tokenizer.EncodeIds(" he loved", addSpecialTokens: false);
        Assert.Equal(" he loved", tokenizer.DecodeContinuation(prompt, continuation));
    }
}
