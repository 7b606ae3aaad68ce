using System.Text.Json;
using System.Text.Json.Nodes;

namespace Mirage.Core.Tokenization;

/// <summary>
/// Writes a byte-level BPE <c>tokenizer.json</c> (GPT-2 / Llama 3 style) that
/// <see cref="TextTokenizer"/> and Hugging Face tokenizers both read. Every input encodes,
/// because the 256 byte symbols are always in the vocabulary.
/// </summary>
public static class TokenizerJsonWriter
{
    /// <summary>The GPT-2 mapping from bytes to printable characters used by byte-level vocabularies.</summary>
    public static IReadOnlyList<char> ByteToChar { get; } = BuildByteMap();

    /// <summary>
    /// Writes <c>tokenizer.json</c> and <c>tokenizer_config.json</c>: the 256 byte symbols, then one
    /// token per merge (in order), then the special tokens. <paramref name="merges"/> are pairs of
    /// existing symbols in byte-level form (e.g. <c>("Ġ", "t")</c>).
    /// </summary>
    /// <returns>The vocabulary size written.</returns>
    public static int WriteByteLevel(string directory, IReadOnlyList<(string Left, string Right)> merges, IReadOnlyList<string> specialTokens, string? bosToken, string? eosToken)
    {
        var vocab = new JsonObject();
        int next = 0;
        foreach (var c in ByteToChar)
            vocab[c.ToString()] = next++;
        foreach (var (left, right) in merges)
        {
            if (vocab.ContainsKey(left + right))
                continue;
            if (!vocab.ContainsKey(left) || !vocab.ContainsKey(right))
                throw new MirageException($"Merge ('{left}', '{right}') uses a symbol that is not in the vocabulary yet.");
            vocab[left + right] = next++;
        }
        var added = new JsonArray();
        foreach (var token in specialTokens)
            added.Add(new JsonObject { ["id"] = next++, ["content"] = token, ["special"] = true, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false });

        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true,
            },
            ["post_processor"] = bosToken is null ? null : new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = bosToken, ["type_id"] = 0 } },
                                           new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
            },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)$"{m.Left} {m.Right}").ToArray()),
            },
        };
        var options = new JsonSerializerOptions { WriteIndented = true };
        File.WriteAllText(Path.Combine(directory, "tokenizer.json"), root.ToJsonString(options));
        var config = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["bos_token"] = bosToken,
            ["eos_token"] = eosToken,
            ["add_bos_token"] = bosToken is not null,
            ["clean_up_tokenization_spaces"] = false,
        };
        File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"), config.ToJsonString(options));
        return next;
    }

    private static char[] BuildByteMap()
    {
        // Printable bytes map to themselves; the rest to 256, 257, ... in byte order.
        var map = new char[256];
        int shifted = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + shifted++);
        }
        return map;
    }
}
