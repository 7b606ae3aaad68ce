using Microsoft.ML.Tokenizers;
using Mirage.Core.Models;

namespace Mirage.Core.Tokenization;

/// <summary>A SentencePiece <c>tokenizer.model</c> (Llama 2 style, byte fallback) through Microsoft.ML.Tokenizers.</summary>
internal sealed class SentencePieceBackend : ITokenizerBackend
{
    private readonly SentencePieceTokenizer _tokenizer;

    public SentencePieceBackend(string path) : this(() => new MemoryStream(ModelFiles.ReadBytes(path)), path)
    {
    }

    /// <summary>A model from <paramref name="open"/> (a file, or a model built from GGUF metadata); <paramref name="path"/> names it in errors.</summary>
    public SentencePieceBackend(Func<Stream> open, string path)
    {
        try
        {
            // A first load reads the control pieces; the second makes them special, so "<s>" written
            // in a chat template's output encodes as the BOS id instead of as characters.
            SentencePieceTokenizer plain;
            using (var stream = open())
                plain = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false);
            var control = new Dictionary<string, int>
            {
                [plain.BeginningOfSentenceToken] = plain.BeginningOfSentenceId,
                [plain.EndOfSentenceToken] = plain.EndOfSentenceId,
            };
            using (var stream = open())
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

    // The library's offsets after a special token written in the text ("<s>" from a chat template)
    // point into a normalized string that no longer lines up with the text. Its ids are right, so
    // the spans come from walking the text piece by piece instead: '▁' matches a space (or is the
    // dummy prefix, which covers nothing), byte-fallback pieces match the character their bytes
    // spell, and a special token matches its own text.
    public IReadOnlyList<TextToken> Encode(string text)
    {
        var tokens = _tokenizer.EncodeToTokens(text, out string? normalized);
        return AlignPieces(text, tokens) ?? LibraryOffsets(text, normalized, tokens);
    }

    private static List<TextToken> LibraryOffsets(string text, string? normalized, IReadOnlyList<EncodedToken> tokens)
    {
        var map = OffsetAlignment.Align(text, normalized ?? text);
        return tokens.Select(t =>
        {
            var (start, end) = OffsetAlignment.Span(map, t.Offset.Start.Value, t.Offset.End.Value);
            return new TextToken(t.Id, t.Value, start, end);
        }).ToList();
    }

    // Null when a piece does not match the text (a normalization this walk does not know).
    private List<TextToken>? AlignPieces(string text, IReadOnlyList<EncodedToken> tokens)
    {
        var result = new List<TextToken>(tokens.Count);
        var bytes = new List<byte>();
        int j = 0, byteStart = 0;
        foreach (var t in tokens)
        {
            if (SpecialTokens.TryGetValue(t.Value, out int special) && special == t.Id && string.CompareOrdinal(text, j, t.Value, 0, t.Value.Length) == 0)
            {
                result.Add(new TextToken(t.Id, t.Value, j, j + t.Value.Length));
                j += t.Value.Length;
                continue;
            }
            if (t.Value.Length == 6 && t.Value.StartsWith("<0x", StringComparison.Ordinal) && t.Value[5] == '>')
            {
                // A character in several byte pieces: the first covers it, the rest are empty at its start.
                if (bytes.Count == 0)
                    byteStart = j;
                bytes.Add(Convert.ToByte(t.Value[3..5], 16));
                var decoded = System.Text.Encoding.UTF8.GetString(bytes.ToArray());
                bool complete = !decoded.Contains('\uFFFD') || bytes.Count >= 4;
                int end = byteStart;
                if (complete)
                {
                    if (string.CompareOrdinal(text, byteStart, decoded, 0, decoded.Length) != 0)
                        return null;
                    end = byteStart + decoded.Length;
                    j = end;
                    bytes.Clear();
                }
                result.Add(new TextToken(t.Id, t.Value, byteStart, bytes.Count > 1 || !complete ? byteStart : end));
                continue;
            }
            int start = -1;
            foreach (char c in t.Value)
            {
                if (c == '\u2581')
                {
                    // A space of the text, or the dummy prefix (nothing in the text).
                    if (j < text.Length && text[j] == ' ')
                    {
                        if (start < 0)
                            start = j;
                        j++;
                    }
                    continue;
                }
                // Spaces the normalizer collapsed.
                while (j < text.Length && text[j] == ' ' && c != ' ')
                    j++;
                if (j >= text.Length || text[j] != c)
                    return null;
                if (start < 0)
                    start = j;
                j++;
            }
            result.Add(new TextToken(t.Id, t.Value, start < 0 ? j : start, j));
        }
        return result;
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens) =>
        _tokenizer.Decode(ids, considerSpecialTokens: !skipSpecialTokens);

    public int? IdOf(string token) =>
        SpecialTokens.TryGetValue(token, out int s) ? s : _tokenizer.Vocabulary.TryGetValue(token, out int id) ? id : null;
}
