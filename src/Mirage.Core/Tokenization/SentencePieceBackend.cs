using Microsoft.ML.Tokenizers;

namespace Mirage.Core.Tokenization;

/// <summary>A SentencePiece <c>tokenizer.model</c> (Llama 2 style, byte fallback) through Microsoft.ML.Tokenizers.</summary>
internal sealed class SentencePieceBackend : ITokenizerBackend
{
    private readonly SentencePieceTokenizer _tokenizer;

    public SentencePieceBackend(string path)
    {
        try
        {
            // A first load reads the control pieces; the second makes them special, so "<s>" written
            // in a chat template's output encodes as the BOS id instead of as characters.
            SentencePieceTokenizer plain;
            using (var stream = File.OpenRead(path))
                plain = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false);
            var control = new Dictionary<string, int>
            {
                [plain.BeginningOfSentenceToken] = plain.BeginningOfSentenceId,
                [plain.EndOfSentenceToken] = plain.EndOfSentenceId,
            };
            using (var stream = File.OpenRead(path))
                _tokenizer = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false, specialTokens: control);
        }
        catch (Exception e) when (e is not IOException)
        {
            throw new InvalidCheckpointException($"'{path}' is not a readable SentencePiece model: {e.Message}", e);
        }
        var special = new Dictionary<string, int>(StringComparer.Ordinal)
        {
            [_tokenizer.BeginningOfSentenceToken] = _tokenizer.BeginningOfSentenceId,
            [_tokenizer.EndOfSentenceToken] = _tokenizer.EndOfSentenceId,
            [_tokenizer.UnknownToken] = _tokenizer.UnknownId,
        };
        foreach (var (token, id) in _tokenizer.SpecialTokens ?? new Dictionary<string, int>())
            special[token] = id;
        SpecialTokens = special;
        LongestToken = _tokenizer.Vocabulary.Keys.Concat(special.Keys).Max(t => t.Length);
    }

    public int LongestToken { get; }

    public string Kind => "sentencepiece";

    public int VocabSize => _tokenizer.Vocabulary.Count;

    public IReadOnlyDictionary<string, int> SpecialTokens { get; }

    public IReadOnlyList<TextToken> Encode(string text)
    {
        var tokens = _tokenizer.EncodeToTokens(text, out string? normalized);
        var map = OffsetAlignment.Align(text, normalized ?? text);
        return tokens.Select(t =>
        {
            var (start, end) = OffsetAlignment.Span(map, t.Offset.Start.Value, t.Offset.End.Value);
            return new TextToken(t.Id, t.Value, start, end);
        }).ToList();
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens) =>
        _tokenizer.Decode(ids, considerSpecialTokens: !skipSpecialTokens);

    public int? IdOf(string token) =>
        SpecialTokens.TryGetValue(token, out int s) ? s : _tokenizer.Vocabulary.TryGetValue(token, out int id) ? id : null;
}
