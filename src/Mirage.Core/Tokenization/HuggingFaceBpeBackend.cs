using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using Mirage.Core.Models;

namespace Mirage.Core.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> with a BPE model, mapped onto Microsoft.ML.Tokenizers'
/// <see cref="BpeTokenizer"/>. Two styles are supported: byte-level BPE (GPT-2, Llama 3, Qwen2:
/// a regex split then bytes as characters) and SentencePiece-style BPE (Llama 2's fast tokenizer:
/// spaces become '▁', a '▁' is prepended, and characters outside the vocabulary fall back to
/// <c>&lt;0xNN&gt;</c> byte tokens).
/// </summary>
internal sealed class HuggingFaceBpeBackend : ITokenizerBackend
{
    private const char Metaspace = '\u2581';
    // SentencePiece pieces carry '▁' only in front, so splitting before each word's '▁' (a run of
    // spaces keeps its last '▁' for the word) gives the same merges as BPE over the whole string,
    // except where a vocabulary has pieces of several '▁' that would swallow a word's own '▁'.
    private const string MetaspacePattern = "\u2581?[^\u2581]+|\u2581+(?=\u2581[^\u2581])|\u2581+";
    // GPT-2's split, used when a ByteLevel pre-tokenizer has use_regex = true.
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly BpeTokenizer _tokenizer;
    private readonly bool _metaspace;
    private readonly bool _prependMetaspace;
    private readonly string? _unknownToken;
    private readonly int[] _byteTokenIds = [];
    private readonly Dictionary<int, byte> _byteOfId = [];
    private readonly Dictionary<int, string> _pieceOfId;
    private readonly HashSet<int> _specialIds;

    public HuggingFaceBpeBackend(string path) : this(Parse(path), path)
    {
    }

    private static JsonObject Parse(string path)
    {
        try
        {
            return JsonNode.Parse(ModelFiles.ReadBytes(path)) as JsonObject ?? throw new InvalidCheckpointException($"'{path}' is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidCheckpointException($"'{path}' is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>A tokenizer.json already parsed (a file, or one built from GGUF metadata); <paramref name="path"/> names it in errors.</summary>
    public HuggingFaceBpeBackend(JsonObject root, string path)
    {
        // Every structural fault of the file (a duplicated key, a value of the wrong type) becomes one
        // clear error naming it, whatever part of the JSON or tokenizer library trips over it.
        try
        {
            var model = root["model"] as JsonObject ?? throw new InvalidCheckpointException($"'{path}' has no 'model' section.");
            var type = model["type"]?.GetValue<string>();
            if (type is not null && type != "BPE")
                throw new InvalidCheckpointException($"'{path}' uses a {type} model; only BPE tokenizer.json files are supported (or provide tokenizer.model).");

            var vocab = (model["vocab"] as JsonObject ?? throw new InvalidCheckpointException($"'{path}' has no model.vocab."))
                .ToDictionary(p => p.Key, p => p.Value!.GetValue<int>(), StringComparer.Ordinal);
            var merges = (model["merges"] as JsonArray ?? [])
                .Select(m => m is JsonArray pair ? $"{pair[0]} {pair[1]}" : m!.GetValue<string>()).ToList();

            var added = (root["added_tokens"] as JsonArray ?? []).OfType<JsonObject>()
                .Select(t => (Content: t["content"]!.GetValue<string>(), Id: t["id"]!.GetValue<int>(), Special: t["special"]?.GetValue<bool>() ?? false))
                .ToList();
            SpecialTokens = added.ToDictionary(t => t.Content, t => t.Id, StringComparer.Ordinal);
            _specialIds = added.Where(t => t.Special).Select(t => t.Id).ToHashSet();

            bool byteLevel = Mentions(root["pre_tokenizer"], "ByteLevel") || Mentions(root["decoder"], "ByteLevel");
            _metaspace = !byteLevel && (Mentions(root["pre_tokenizer"], "Metaspace") || Mentions(root["normalizer"], "Prepend")
                                        || (model["byte_fallback"]?.GetValue<bool>() ?? false));
            if (!byteLevel && !_metaspace)
                throw new InvalidCheckpointException($"'{path}': only byte-level BPE and SentencePiece-style (metaspace) BPE tokenizers are supported.");
            _prependMetaspace = _metaspace && !Mentions(root["pre_tokenizer"], "\"prepend_scheme\":\"never\"");
            _unknownToken = model["unk_token"]?.GetValue<string>();

            if (model["byte_fallback"]?.GetValue<bool>() ?? false)
            {
                _byteTokenIds = new int[256];
                for (int b = 0; b < 256; b++)
                {
                    var piece = $"<0x{b:X2}>";
                    _byteTokenIds[b] = vocab.TryGetValue(piece, out int id) ? id
                        : throw new InvalidCheckpointException($"'{path}' enables byte_fallback but has no '{piece}' token.");
                    _byteOfId[id] = (byte)b;
                }
            }

            var options = new BpeOptions(vocab)
            {
                Merges = merges,
                ByteLevel = byteLevel,
                SpecialTokens = SpecialTokens.Count > 0 ? SpecialTokens.ToDictionary() : null,
                UnknownToken = _unknownToken is not null && vocab.ContainsKey(_unknownToken) ? _unknownToken : null,
                FuseUnknownTokens = false,
                // Without a pre-tokenizer the library would split words at non-word characters such as '▁'.
                PreTokenizer = new RegexPreTokenizer(
                    new Regex(byteLevel ? SplitPattern(root["pre_tokenizer"]) ?? Gpt2Pattern : MetaspacePattern, RegexOptions.Compiled),
                    SpecialTokens.ToDictionary()),
            };
            try
            {
                _tokenizer = BpeTokenizer.Create(options);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                throw new InvalidCheckpointException($"'{path}' could not be loaded as a BPE tokenizer: {e.Message}", e);
            }
            _pieceOfId = vocab.Concat(SpecialTokens).GroupBy(p => p.Value).ToDictionary(g => g.Key, g => g.First().Key);
            Kind = byteLevel ? "bpe-byte-level" : "bpe-sentencepiece";
            // A byte-level entry's characters are bytes, so it is never shorter than the text it stands for.
            LongestToken = _pieceOfId.Values.DefaultIfEmpty("").Max(t => t.Length);
            VocabSize = _pieceOfId.Count == 0 ? 0 : _pieceOfId.Keys.Max() + 1;
        }
        catch (Exception e) when (e is not (InvalidCheckpointException or IOException or OutOfMemoryException))
        {
            throw new InvalidCheckpointException($"'{path}' is not a readable tokenizer.json: {e.Message}", e);
        }
    }

    public string Kind { get; }

    public int VocabSize { get; }

    public int LongestToken { get; }

    public IReadOnlyDictionary<string, int> SpecialTokens { get; }

    public IReadOnlyList<TextToken> Encode(string text)
    {
        if (!_metaspace)
            return _tokenizer.EncodeToTokens(text, out _).Select(t => new TextToken(t.Id, t.Value, t.Offset.Start.Value, t.Offset.End.Value)).ToList();

        // SentencePiece style: the transformed text has one character per original character
        // (plus the '▁' prefix), so offsets map back by a shift.
        int shift = _prependMetaspace ? 1 : 0;
        var transformed = (_prependMetaspace ? Metaspace.ToString() : "") + text.Replace(' ', Metaspace);
        var result = new List<TextToken>();
        foreach (var t in _tokenizer.EncodeToTokens(transformed, out _))
        {
            int start = Math.Max(0, t.Offset.Start.Value - shift), end = Math.Max(start, t.Offset.End.Value - shift);
            if (t.Value == _unknownToken && _byteTokenIds.Length > 0)
                AddByteTokens(result, transformed[t.Offset], start, end);
            else
                result.Add(new TextToken(t.Id, t.Value, start, end));
        }
        return result;
    }

    // Byte fallback: a character missing from the vocabulary becomes its UTF-8 bytes.
    private void AddByteTokens(List<TextToken> result, string characters, int start, int end)
    {
        bool first = true;
        foreach (byte b in Encoding.UTF8.GetBytes(characters))
        {
            result.Add(new TextToken(_byteTokenIds[b], $"<0x{b:X2}>", start, first ? end : start));
            first = false;
        }
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        var kept = ids.Where(id => !(skipSpecialTokens && _specialIds.Contains(id)));
        if (!_metaspace)
            return _tokenizer.Decode(kept, considerSpecialTokens: !skipSpecialTokens);

        var text = new StringBuilder();
        var bytes = new List<byte>();
        foreach (var id in kept)
        {
            if (_byteOfId.TryGetValue(id, out byte b))
            {
                bytes.Add(b);
                continue;
            }
            FlushBytes(text, bytes);
            text.Append(_pieceOfId.TryGetValue(id, out var piece) ? piece : "");
        }
        FlushBytes(text, bytes);
        var decoded = text.Replace(Metaspace, ' ').ToString();
        return _prependMetaspace && decoded.StartsWith(' ') ? decoded[1..] : decoded;
    }

    private static void FlushBytes(StringBuilder text, List<byte> bytes)
    {
        if (bytes.Count == 0)
            return;
        text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
        bytes.Clear();
    }

    public int? IdOf(string token) =>
        SpecialTokens.TryGetValue(token, out int s) ? s : _tokenizer.Vocabulary.TryGetValue(token, out int id) ? id : null;

    private static bool Mentions(JsonNode? node, string text) =>
        node is not null && node.ToJsonString().Replace(" ", "").Contains(text.Replace(" ", ""), StringComparison.Ordinal);

    // The regex of a Split pre-tokenizer (Llama 3, Qwen2), found anywhere in the pre-tokenizer tree.
    private static string? SplitPattern(JsonNode? node) => node switch
    {
        JsonObject o when o["type"]?.GetValue<string>() == "Split" && o["pattern"]?["Regex"] is JsonValue r => r.GetValue<string>(),
        JsonObject o when o["type"]?.GetValue<string>() == "ByteLevel" && o["use_regex"] is JsonValue u && !u.GetValue<bool>() => null,
        JsonObject o => (o["pretokenizers"] as JsonArray)?.Select(SplitPattern).FirstOrDefault(p => p is not null),
        _ => null,
    };
}
