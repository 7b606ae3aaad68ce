using System.Text.Json;
using System.Text.Json.Nodes;
using Mirage.Core.Models;

namespace Mirage.Core.Tokenization;

/// <summary>The parts of <c>tokenizer_config.json</c> that change how text becomes ids.</summary>
/// <param name="AddBos">Prepend the BOS token when encoding a prompt (null when the file does not say).</param>
/// <param name="AddEos">Append the EOS token (rare for decoder-only models).</param>
/// <param name="BosToken">The BOS token's text, if any.</param>
/// <param name="EosToken">The EOS token's text, if any.</param>
/// <param name="ChatTemplate">The Jinja chat template, if the model has one.</param>
/// <param name="ModelMaxLength">The longest input the tokenizer was configured for, if stated.</param>
public sealed record TokenizerSettings(bool? AddBos, bool AddEos, string? BosToken, string? EosToken, string? ChatTemplate, long? ModelMaxLength)
{
    /// <summary>Reads <c>tokenizer_config.json</c> (and <c>special_tokens_map.json</c> for missing BOS/EOS) from a folder; empty settings when absent.</summary>
    public static TokenizerSettings Load(string directory)
    {
        var config = ReadObject(Path.Combine(directory, "tokenizer_config.json"));
        var map = ReadObject(Path.Combine(directory, "special_tokens_map.json"));
        return new TokenizerSettings(
            AddBos: config?["add_bos_token"] is JsonValue b && b.TryGetValue(out bool addBos) ? addBos : null,
            AddEos: config?["add_eos_token"] is JsonValue e && e.TryGetValue(out bool addEos) && addEos,
            BosToken: TokenText(config?["bos_token"]) ?? TokenText(map?["bos_token"]),
            EosToken: TokenText(config?["eos_token"]) ?? TokenText(map?["eos_token"]),
            ChatTemplate: config?["chat_template"] is JsonValue t && t.TryGetValue(out string? template) ? template : null,
            ModelMaxLength: config?["model_max_length"] is JsonValue m && m.TryGetValue(out double max) && max < 1e12 ? (long)max : null);
    }

    private static JsonObject? ReadObject(string path)
    {
        if (!File.Exists(path))
            return null;
        try
        {
            return JsonNode.Parse(ModelFiles.ReadBytes(path)) as JsonObject;
        }
        catch (JsonException e)
        {
            throw new InvalidCheckpointException($"'{path}' is not valid JSON: {e.Message}", e);
        }
    }

    // Special tokens appear either as plain strings or as AddedToken objects {"content": ...}.
    private static string? TokenText(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonObject o => o["content"]?.GetValue<string>(),
        _ => null,
    };
}
