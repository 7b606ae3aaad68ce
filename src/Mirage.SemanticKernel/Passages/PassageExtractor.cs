using System.Collections;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.SemanticKernel.Data;
using Mirage.Core.Citations;
using Qdrant.Client.Grpc;

namespace Mirage.SemanticKernel.Passages;

/// <summary>
/// Turns what retrieval functions return into passages: <see cref="TextSearchResult"/>s,
/// <see cref="KernelSearchResults{T}"/>, Qdrant points (<see cref="ScoredPoint"/>,
/// <see cref="RetrievedPoint"/>: the point id is the passage id, the payload fields named by the
/// <see cref="PassageMapping"/> give text, title and link), strings (plain or JSON), JSON elements,
/// and records read through the mapping. Ids are stable: an explicit id, else the link, else the
/// title, else a hash of the text.
/// </summary>
public sealed class PassageExtractor(PassageMapping mapping)
{
    private static readonly MethodInfo MaterializeMethod = typeof(PassageExtractor).GetMethod(nameof(MaterializeAsync), BindingFlags.NonPublic | BindingFlags.Static)!;
    private static readonly string[] ListProperties = ["results", "documents", "value", "data", "items", "passages"];

    /// <summary>True for values that are search results whatever function returned them: <see cref="TextSearchResult"/>s or <see cref="KernelSearchResults{T}"/>.</summary>
    public static bool IsSearchResult(object? value) =>
        value is IEnumerable<TextSearchResult> or IEnumerable<ScoredPoint> or IEnumerable<RetrievedPoint>
        || (value?.GetType() is { IsGenericType: true } type && type.GetGenericTypeDefinition() == typeof(KernelSearchResults<>));

    /// <summary>
    /// The passages in <paramref name="value"/>, and the value to hand on to the caller: a
    /// re-playable copy when the original could be enumerated only once (search results), else the value itself.
    /// </summary>
    public async Task<(IReadOnlyList<Passage> Passages, object? Value)> ExtractAsync(object? value, CancellationToken cancellationToken = default)
    {
        if (value?.GetType() is { IsGenericType: true } type && type.GetGenericTypeDefinition() == typeof(KernelSearchResults<>))
        {
            var task = (Task<(List<object?> Items, object Copy)>)MaterializeMethod.MakeGenericMethod(type.GetGenericArguments()[0]).Invoke(null, [value, cancellationToken])!;
            var (items, copy) = await task.ConfigureAwait(false);
            return (FromItems(items), copy);
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
        if (item is TextSearchResult result)
            return string.IsNullOrWhiteSpace(result.Value) ? null : Create(null, result.Name, result.Link, result.Value);
        if (item is ScoredPoint scored)
            return FromQdrant(scored.Id, scored.Payload);
        if (item is RetrievedPoint retrieved)
            return FromQdrant(retrieved.Id, retrieved.Payload);
        var properties = item.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0).ToList();
        return FromFields(n => properties.FirstOrDefault(p => string.Equals(p.Name, n, StringComparison.OrdinalIgnoreCase))?.GetValue(item)?.ToString());
    }

    // A Qdrant point: its id (number or UUID) names the passage; payload values that are strings or numbers fill the mapping's fields.
    private Passage? FromQdrant(PointId? id, IDictionary<string, Value> payload)
    {
        var pointId = id?.PointIdOptionsCase switch
        {
            PointId.PointIdOptionsOneofCase.Num => id.Num.ToString(System.Globalization.CultureInfo.InvariantCulture),
            PointId.PointIdOptionsOneofCase.Uuid => id.Uuid,
            _ => null,
        };
        return FromFields(n => payload.FirstOrDefault(p => string.Equals(p.Key, n, StringComparison.OrdinalIgnoreCase)).Value switch
        {
            { KindCase: Value.KindOneofCase.StringValue } v => v.StringValue,
            { KindCase: Value.KindOneofCase.IntegerValue } v => v.IntegerValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
            { KindCase: Value.KindOneofCase.DoubleValue } v => v.DoubleValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => null,
        }, pointId);
    }

    // A record read field by field (case-insensitive names): for each part, the mapping's first
    // candidate with a non-blank value; no text, no passage. An id given outright wins over the mapping's.
    private Passage? FromFields(Func<string, string?> field, string? id = null)
    {
        string? Read(List<string> names) => names.Select(field).FirstOrDefault(v => !string.IsNullOrWhiteSpace(v));
        var text = Read(mapping.Text);
        return text is null ? null : Create(id ?? Read(mapping.Id), Read(mapping.Title), Read(mapping.Link), text);
    }

    private static Passage Create(string? id, string? title, string? link, string text) =>
        new(id ?? link ?? title ?? ContentId(text), title, text, link);

    /// <summary>A stable id from a passage's text: <c>sha256:</c> and 12 hex digits.</summary>
    public static string ContentId(string text) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..12];

    private static async Task<(List<object?> Items, object Copy)> MaterializeAsync<T>(KernelSearchResults<T> results, CancellationToken cancellationToken)
    {
        var items = new List<T>();
        await foreach (var item in results.Results.WithCancellation(cancellationToken).ConfigureAwait(false))
            items.Add(item);
        return (items.Cast<object?>().ToList(), new KernelSearchResults<T>(items.ToAsyncEnumerable(), results.TotalCount, results.Metadata));
    }
}
