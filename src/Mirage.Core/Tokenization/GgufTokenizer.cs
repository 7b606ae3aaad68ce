using System.Text.Json.Nodes;
using Mirage.Core.Models;
using Mirage.Core.Models.Gguf;

namespace Mirage.Core.Tokenization;

/// <summary>
/// A tokenizer stored in GGUF metadata (<c>tokenizer.ggml.*</c>), in both directions:
/// <c>llama</c> (SentencePiece pieces with scores and types, byte fallback) becomes a SentencePiece
/// model, <c>gpt2</c> (byte-level BPE tokens and merges, split by the pre-tokenizer
/// <c>tokenizer.ggml.pre</c> names) a <c>tokenizer.json</c>; both then encode with the same
/// character offsets as a Hugging Face folder's tokenizer.
/// </summary>
public static class GgufTokenizer
{
    // The split each supported pre-tokenizer name stands for (llama.cpp's llama-vocab.cpp).
    private static readonly Dictionary<string, string?> PreTokenizers = new()
    {
        ["default"] = null,
        ["gpt-2"] = null,
        ["llama-bpe"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ["qwen2"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    };

    private const int Control = 3, Unused = 5;

    /// <summary>The tokenizer a GGUF file describes.</summary>
    /// <exception cref="InvalidCheckpointException">A tokenizer model or pre-tokenizer Mirage does not read, or inconsistent metadata.</exception>
    public static TextTokenizer Read(GgufFile file)
    {
        var model = file.Get("tokenizer.ggml.model", "");
        var tokens = Strings(file, "tokenizer.ggml.tokens");
        var types = file.Metadata.ContainsKey("tokenizer.ggml.token_type") ? Numbers(file, "tokenizer.ggml.token_type", tokens.Length) : Enumerable.Repeat(1.0, tokens.Length).ToArray();
        int? Id(string key)
        {
            if (!file.Metadata.ContainsKey(key))
                return null;
            int id = file.Get(key, -1);
            return id >= 0 && id < tokens.Length ? id : throw new InvalidCheckpointException($"'{file.Path}': {key} is {id}, outside the {tokens.Length}-token vocabulary.");
        }
        int? bos = Id("tokenizer.ggml.bos_token_id"), eos = Id("tokenizer.ggml.eos_token_id");
        var source = $"{file.Path} (tokenizer.ggml.*)";
        ITokenizerBackend backend = model switch
        {
            "llama" => new SentencePieceBackend(() => new MemoryStream(SentencePiece(file, tokens, types, bos, eos).Write()), source),
            "gpt2" => new HuggingFaceBpeBackend(TokenizerJson(file, tokens, types), source),
            _ => throw new InvalidCheckpointException($"'{file.Path}' uses the '{model}' tokenizer; GGUF tokenizers Mirage reads: llama (SentencePiece), gpt2 (byte-level BPE)."),
        };
        var settings = new TokenizerSettings(
            AddBos: file.Get("tokenizer.ggml.add_bos_token", model == "llama"),
            AddEos: file.Get("tokenizer.ggml.add_eos_token", false),
            BosToken: bos is int b ? tokens[b] : null,
            EosToken: eos is int e ? tokens[e] : null,
            ChatTemplate: file.Metadata.ContainsKey("tokenizer.chat_template") ? file.Get("tokenizer.chat_template", "") : null,
            ModelMaxLength: null);
        return new TextTokenizer(backend, settings, bos, eos is int id ? [id] : [], bos is not null && settings.AddBos == true);
    }

    private static SentencePieceModel SentencePiece(GgufFile file, string[] tokens, double[] types, int? bos, int? eos)
    {
        var scores = file.Metadata.ContainsKey("tokenizer.ggml.scores") ? Numbers(file, "tokenizer.ggml.scores", tokens.Length) : new double[tokens.Length];
        var pieces = tokens.Select((t, i) => new SentencePiece(t, (float)scores[i], (int)types[i])).ToList();
        bool byteFallback = types.Any(t => t == 6);
        return new SentencePieceModel(pieces, SentencePieceModel.Bpe, byteFallback, file.Get("tokenizer.ggml.unknown_token_id", 0), bos ?? -1, eos ?? -1,
            AddDummyPrefix: file.Get("tokenizer.ggml.add_space_prefix", true), RemoveExtraWhitespaces: false);
    }

    private static JsonObject TokenizerJson(GgufFile file, string[] tokens, double[] types)
    {
        var pre = file.Get("tokenizer.ggml.pre", "default");
        if (!PreTokenizers.TryGetValue(pre, out var split))
            throw new InvalidCheckpointException($"'{file.Path}' splits text with the '{pre}' pre-tokenizer; supported: {string.Join(", ", PreTokenizers.Keys)}.");
        var vocab = new JsonObject();
        var added = new JsonArray();
        for (int i = 0; i < tokens.Length; i++)
        {
            if (types[i] is Control or 4)
                added.Add(new JsonObject { ["id"] = i, ["content"] = tokens[i], ["special"] = types[i] == Control });
            else if (!vocab.ContainsKey(tokens[i]))
                vocab[tokens[i]] = i;
        }
        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = split is null };
        return new JsonObject
        {
            ["added_tokens"] = added,
            ["pre_tokenizer"] = split is null ? byteLevel : new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = split }, ["behavior"] = "Isolated" }, byteLevel),
            },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(Strings(file, "tokenizer.ggml.merges").Select(m => (JsonNode)m).ToArray()),
            },
        };
    }

    /// <summary>
    /// The GGUF metadata for a Hugging Face folder's tokenizer: <c>llama</c> from a SentencePiece
    /// <c>tokenizer.model</c>, <c>gpt2</c> from a byte-level <c>tokenizer.json</c> (whose split is GPT-2's).
    /// The token list is padded with unused <c>[PADn]</c> tokens to <paramref name="vocabSize"/>, the
    /// embedding's rows, as llama.cpp expects one token per row.
    /// </summary>
    public static List<KeyValuePair<string, object>> Metadata(string directory, TextTokenizer tokenizer, int vocabSize)
    {
        var metadata = new List<KeyValuePair<string, object>>();
        var modelPath = Path.Combine(directory, "tokenizer.model");
        if (File.Exists(modelPath))
        {
            var model = SentencePieceModel.Read(ModelFiles.ReadBytes(modelPath), modelPath);
            var pieces = model.Pieces.Concat(Enumerable.Range(model.Pieces.Count, Math.Max(0, vocabSize - model.Pieces.Count)).Select(i => new SentencePiece($"[PAD{i}]", 0, Unused))).ToList();
            metadata.Add(new("tokenizer.ggml.model", "llama"));
            metadata.Add(new("tokenizer.ggml.tokens", pieces.Select(p => p.Piece).ToArray()));
            metadata.Add(new("tokenizer.ggml.scores", pieces.Select(p => p.Score).ToArray()));
            metadata.Add(new("tokenizer.ggml.token_type", pieces.Select(p => p.Type).ToArray()));
            metadata.Add(new("tokenizer.ggml.unknown_token_id", (uint)Math.Max(0, model.UnknownId)));
            metadata.Add(new("tokenizer.ggml.add_space_prefix", model.AddDummyPrefix));
        }
        else
        {
            var path = Path.Combine(directory, "tokenizer.json");
            var root = JsonNode.Parse(ModelFiles.ReadBytes(path))!.AsObject();
            if (tokenizer.Kind != "bpe-byte-level")
                throw new MirageException($"'{path}' is a {tokenizer.Kind} tokenizer; GGUF conversion takes SentencePiece tokenizer.model or byte-level BPE tokenizer.json files.");
            var vocab = root["model"]!["vocab"]!.AsObject().ToDictionary(p => p.Value!.GetValue<int>(), p => p.Key);
            var special = new Dictionary<int, string>();
            foreach (var token in (root["added_tokens"] as JsonArray ?? []).OfType<JsonObject>())
                special[token["id"]!.GetValue<int>()] = token["content"]!.GetValue<string>();
            int size = Math.Max(vocab.Keys.Concat(special.Keys).Max() + 1, vocabSize);
            var tokens = Enumerable.Range(0, size).Select(i => special.TryGetValue(i, out var s) ? s : vocab.TryGetValue(i, out var v) ? v : $"[PAD{i}]").ToArray();
            metadata.Add(new("tokenizer.ggml.model", "gpt2"));
            metadata.Add(new("tokenizer.ggml.pre", "gpt-2"));
            metadata.Add(new("tokenizer.ggml.tokens", tokens));
            metadata.Add(new("tokenizer.ggml.token_type", Enumerable.Range(0, size).Select(i => special.ContainsKey(i) ? Control : vocab.ContainsKey(i) ? 1 : Unused).ToArray()));
            metadata.Add(new("tokenizer.ggml.merges", (root["model"]!["merges"] as JsonArray ?? []).Select(m => m is JsonArray pair ? $"{pair[0]} {pair[1]}" : m!.GetValue<string>()).ToArray()));
        }
        if (tokenizer.BosId is int bos)
            metadata.Add(new("tokenizer.ggml.bos_token_id", (uint)bos));
        if (tokenizer.EosIds.Count > 0)
            metadata.Add(new("tokenizer.ggml.eos_token_id", (uint)tokenizer.EosIds[0]));
        metadata.Add(new("tokenizer.ggml.add_bos_token", tokenizer.AddBos));
        if (tokenizer.Settings.ChatTemplate is { } template)
            metadata.Add(new("tokenizer.chat_template", template));
        return metadata;
    }

    private static string[] Strings(GgufFile file, string key) =>
        file.Get<object[]>(key, []) is var items && items.All(i => i is string) ? items.Cast<string>().ToArray()
        : throw new InvalidCheckpointException($"'{file.Path}': {key} must be a list of strings.");

    private static double[] Numbers(GgufFile file, string key, int count)
    {
        var items = file.Get<object[]>(key, []);
        if (items.Length != count || !items.All(i => i is long or double))
            throw new InvalidCheckpointException($"'{file.Path}': {key} must hold {count} numbers, one per token.");
        return items.Select(i => i is long l ? l : (double)i).ToArray();
    }
}
