using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Mirage.Eval.Data;

/// <summary>
/// Reads ALCE-format data: a JSON list of items, or an object whose <c>data</c> field is one. As
/// ALCE does, an item's <c>output</c> is cut at its first newline and its <c>[n]</c> marks are
/// stripped; items without an <c>id</c> are numbered. Extra fields are ignored.
/// </summary>
public static partial class AlceFile
{
    /// <summary>Loads the items of <paramref name="path"/>; throws <see cref="InvalidDataException"/> naming the file and item when the data is malformed.</summary>
    public static async Task<IReadOnlyList<AlceItem>> LoadAsync(string path, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Data file '{path}' does not exist.", path);
        JsonNode? root;
        await using (var stream = File.OpenRead(path))
        {
            try
            {
                root = await JsonNode.ParseAsync(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path} is not valid JSON: {e.Message}", e);
            }
        }
        var list = root as JsonArray ?? root?["data"] as JsonArray
            ?? throw new InvalidDataException($"{path}: expected a JSON list of items or an object with a 'data' list.");
        var items = new List<AlceItem>();
        for (int i = 0; i < list.Count; i++)
        {
            AlceItem? item;
            try
            {
                item = list[i].Deserialize<AlceItem>();
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}, item {i}: {e.Message}", e);
            }
            if (item?.Docs is null || item.Docs.Count == 0 || item.Question is null || string.IsNullOrWhiteSpace(item.Output))
                throw new InvalidDataException($"{path}, item {i}: every item needs 'question', a non-empty 'docs' list and an 'output' to cite.");
            var output = CitationMark().Replace(item.Output.Trim().Split('\n')[0], "").Trim();
            if (item.GoldCitations is not null && item.GoldCitations.Any(g => g.Any(p => p < 0 || p >= item.Docs.Count)))
                throw new InvalidDataException($"{path}, item {i}: gold_citations name a passage outside its {item.Docs.Count} docs.");
            items.Add(item with { Id = item.Id ?? i.ToString(System.Globalization.CultureInfo.InvariantCulture), Output = output });
        }
        return items;
    }

    [GeneratedRegex(@"\s*\[\d+(?:\s*,\s*\d+)*\]")]
    private static partial Regex CitationMark();
}
