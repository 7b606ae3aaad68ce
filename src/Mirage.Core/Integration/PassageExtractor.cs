using System.Collections;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Mirage.Core.Citations;

namespace Mirage.Core.Integration;

/// <summary>
/// Turns what retrieval functions return into passages: strings (plain or JSON), JSON elements, and
/// records read through the <see cref="PassageMapping"/>, plus whatever result types the
/// <see cref="IPassageReader"/>s given know (Semantic Kernel's search results and Qdrant points
/// come with Mirage.SemanticKernel). Ids are stable: an explicit id, else the link, else the title,
/// else a hash of the text.
/// </summary>
public sealed class PassageExtractor(PassageMapping mapping, IEnumerable<IPassageReader>? readers = null)
{
    private static readonly string[] ListProperties = ["results", "documents", "value", "data", "items", "passages"];
    private readonly IReadOnlyList<IPassageReader> _readers = readers?.ToList() ?? [];

    /// <summary>True for values that are search results whatever function returned them (a reader's types).</summary>
    public bool IsSearchResult(object? value) => value is not null && _readers.Any(r => r.IsSearchResult(value));

    /// <summary>
    /// The passages in <paramref name="value"/>, and the value to hand on to the caller: a
    /// re-playable copy when the original could be enumerated only once (search results), else the value itself.
    /// </summary>
    public async Task<(IReadOnlyList<Passage> Passages, object? Value)> ExtractAsync(object? value, CancellationToken cancellationToken = default)
    {
        foreach (var reader in _readers)
        {
            if (value is not null && await reader.MaterializeAsync(value, cancellationToken).ConfigureAwait(false) is { } materialized)
                return (FromItems(materialized.Items), materialized.Copy);
        }
        return (Extract(value), value);
    }

    /// <summary>The passages in a value that needs no asynchronous enumeration.</summary>
    public IReadOnlyList<Passage> Extract(object? value) => value switch
    {
        null => [],
        string text => FromString(text),
        JsonElement json => FromJson(json),
        IEnumerable items and not IDictionary<string, object?> => FromItems(items.Cast<object?>()),
        _ => ToPassage(value) is { } passage ? [passage] : [],
    };

    private IReadOnlyList<Passage> FromItems(IEnumerable<object?> items) =>
        items.SelectMany(item => item switch
        {
            string text => string.IsNullOrWhiteSpace(text) ? [] : [Create(null, null, null, text)],
            JsonElement json => FromJson(json),
            null => [],
            _ => ToPassage(item) is { } passage ? [passage] : Array.Empty<Passage>(),
        }).ToList();

    private IReadOnlyList<Passage> FromString(string text)
    {
        var trimmed = text.TrimStart();
        if (trimmed.StartsWith('[') || trimmed.StartsWith('{'))
        {
            try
            {
                using var document = JsonDocument.Parse(text);
                return FromJson(document.RootElement.Clone());
            }
            catch (JsonException)
            {
                // Not JSON after all: plain text.
            }
        }
        return string.IsNullOrWhiteSpace(text) ? [] : [Create(null, null, null, text)];
    }

    private IReadOnlyList<Passage> FromJson(JsonElement json)
    {
        switch (json.ValueKind)
        {
            case JsonValueKind.Array:
                return json.EnumerateArray().SelectMany(FromJson).ToList();
            case JsonValueKind.String:
                return FromString(json.GetString()!);
            case JsonValueKind.Object:
                if (Find(json, mapping.Text) is { } text)
                    return [Create(Find(json, mapping.Id), Find(json, mapping.Title), Find(json, mapping.Link), text)];
                foreach (var property in json.EnumerateObject())
                {
                    if (property.Value.ValueKind == JsonValueKind.Array && ListProperties.Contains(property.Name, StringComparer.OrdinalIgnoreCase))
                        return FromJson(property.Value);
                }
                return [];
            default:
                return [];
        }
    }

    private static string? Find(JsonElement json, List<string> names)
    {
        foreach (var name in names)
        {
            foreach (var property in json.EnumerateObject())
            {
                if (string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase) && property.Value.ValueKind is JsonValueKind.String or JsonValueKind.Number)
                    return property.Value.ToString();
            }
        }
        return null;
    }

    private Passage? ToPassage(object item)
    {
        foreach (var reader in _readers)
        {
            if (reader.TryRead(item, this, out var read))
                return read;
        }
        var properties = item.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0).ToList();
        return FromFields(n => properties.FirstOrDefault(p => string.Equals(p.Name, n, StringComparison.OrdinalIgnoreCase))?.GetValue(item)?.ToString());
    }

    /// <summary>
    /// A record read field by field (<paramref name="field"/> gives a field's value by name): for each
    /// part, the mapping's first candidate with a non-blank value; no text, no passage. An id given
    /// outright wins over the mapping's.
    /// </summary>
    public Passage? FromFields(Func<string, string?> field, string? id = null)
    {
        string? Read(List<string> names) => names.Select(field).FirstOrDefault(v => !string.IsNullOrWhiteSpace(v));
        var text = Read(mapping.Text);
        return text is null ? null : Create(id ?? Read(mapping.Id), Read(mapping.Title), Read(mapping.Link), text);
    }

    /// <summary>A passage with a stable id: <paramref name="id"/>, else the link, else the title, else a hash of the text.</summary>
    public static Passage Create(string? id, string? title, string? link, string text) =>
        new(id ?? link ?? title ?? ContentId(text), title, text, link);

    /// <summary>A stable id from a passage's text: <c>sha256:</c> and 12 hex digits.</summary>
    public static string ContentId(string text) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..12];
}
