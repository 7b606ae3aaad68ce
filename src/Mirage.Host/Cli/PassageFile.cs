using System.Text.Json;
using System.Text.Json.Nodes;
using Mirage.Core;
using Mirage.Core.Citations;

namespace Mirage.Host.Cli;

/// <summary>
/// Reads passages for <c>mirage cite</c>: a JSON list of <c>{id?, title?, text, url?}</c>, or an
/// object holding such a list under <c>docs</c> (an ALCE item) or <c>passages</c>.
/// </summary>
internal static class PassageFile
{
    public static IReadOnlyList<Passage> Read(string path)
    {
        if (!File.Exists(path))
            throw new MirageException($"Passages file '{path}' does not exist.");
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new MirageException($"Passages file '{path}' is not valid JSON: {e.Message}");
        }
        var list = root switch
        {
            JsonArray array => array,
            JsonObject o when o["docs"] is JsonArray docs => docs,
            JsonObject o when o["passages"] is JsonArray passages => passages,
            _ => throw new MirageException($"Passages file '{path}' must hold a JSON list of passages, or an object with a 'docs' (ALCE) or 'passages' list."),
        };
        return list.Select((node, i) => Parse(node, i, path)).ToList();
    }

    private static Passage Parse(JsonNode? node, int index, string path)
    {
        if (node is JsonValue value && value.TryGetValue(out string? plain))
            return new Passage(null, null, plain);
        if (node is not JsonObject o)
            throw new MirageException($"'{path}': passage {index + 1} must be an object with a 'text' field or a string.");
        string? Field(string name) => o[name] switch
        {
            null => null,
            JsonValue v when v.TryGetValue(out string? s) => s,
            JsonValue v => v.ToJsonString(),
            _ => throw new MirageException($"'{path}': passage {index + 1} field '{name}' must be a string."),
        };
        var text = Field("text") ?? throw new MirageException($"'{path}': passage {index + 1} has no 'text' field.");
        return new Passage(Field("id"), Field("title"), text, Field("url"));
    }
}
