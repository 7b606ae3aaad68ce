using System.Text.Json;

namespace Mirage.Core.Integration;

/// <summary>
/// The token ids a Mirage model generated for an answer, carried beside its text (M.E.AI
/// <c>AdditionalProperties</c>, Semantic Kernel <c>Metadata</c>) by Mirage.Extensions.AI's <c>MirageLocalChatClient</c>,
/// so that citations teacher-force exactly what was generated instead of re-tokenising the text.
/// A streamed answer carries, on each update, the ids of that update's text.
/// </summary>
public static class GeneratedTokenIds
{
    /// <summary>The metadata key.</summary>
    public const string MetadataKey = "mirage.token_ids";

    /// <summary>The ids in <paramref name="properties"/>, or null when there are none.</summary>
    public static IReadOnlyList<int>? From(IEnumerable<KeyValuePair<string, object?>>? properties) =>
        properties?.FirstOrDefault(p => p.Key == MetadataKey).Value switch
        {
            IReadOnlyList<int> ids => ids,
            // Metadata that went through JSON (a bridge or a cache) comes back as an element.
            JsonElement { ValueKind: JsonValueKind.Array } json when json.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out _)) =>
                json.EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            _ => null,
        };
}
