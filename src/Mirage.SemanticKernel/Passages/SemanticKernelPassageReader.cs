using System.Reflection;
using Microsoft.SemanticKernel.Data;
using Mirage.Core.Citations;
using Mirage.Core.Integration;
using Qdrant.Client.Grpc;

namespace Mirage.SemanticKernel.Passages;

/// <summary>
/// Passages from Semantic Kernel's search results (<see cref="TextSearchResult"/>,
/// <see cref="KernelSearchResults{T}"/>, replayed to the caller after they are read) and Qdrant
/// points (<see cref="ScoredPoint"/>, <see cref="RetrievedPoint"/>: the point id is the passage id,
/// the payload fields the mapping names give text, title and link).
/// </summary>
public sealed class SemanticKernelPassageReader : IPassageReader
{
    private static readonly MethodInfo MaterializeMethod = typeof(SemanticKernelPassageReader).GetMethod(nameof(Materialize), BindingFlags.NonPublic | BindingFlags.Static)!;

    /// <inheritdoc />
    public bool IsSearchResult(object value) =>
        value is IEnumerable<TextSearchResult> or IEnumerable<ScoredPoint> or IEnumerable<RetrievedPoint> || IsKernelSearchResults(value);

    /// <inheritdoc />
    public bool TryRead(object item, PassageExtractor extractor, out Passage? passage)
    {
        passage = item switch
        {
            TextSearchResult result => string.IsNullOrWhiteSpace(result.Value) ? null : PassageExtractor.Create(null, result.Name, result.Link, result.Value),
            ScoredPoint scored => FromQdrant(extractor, scored.Id, scored.Payload),
            RetrievedPoint retrieved => FromQdrant(extractor, retrieved.Id, retrieved.Payload),
            _ => null,
        };
        return item is TextSearchResult or ScoredPoint or RetrievedPoint;
    }

    /// <inheritdoc />
    public async Task<(IReadOnlyList<object?> Items, object Copy)?> MaterializeAsync(object value, CancellationToken cancellationToken)
    {
        if (!IsKernelSearchResults(value))
            return null;
        var task = (Task<(IReadOnlyList<object?> Items, object Copy)>)MaterializeMethod.MakeGenericMethod(value.GetType().GetGenericArguments()[0]).Invoke(null, [value, cancellationToken])!;
        return await task.ConfigureAwait(false);
    }

    private static bool IsKernelSearchResults(object value) => value.GetType() is { IsGenericType: true } type && type.GetGenericTypeDefinition() == typeof(KernelSearchResults<>);

    private static async Task<(IReadOnlyList<object?> Items, object Copy)> Materialize<T>(KernelSearchResults<T> results, CancellationToken cancellationToken)
    {
        var items = new List<T>();
        await foreach (var item in results.Results.WithCancellation(cancellationToken).ConfigureAwait(false))
            items.Add(item);
        return (items.Cast<object?>().ToList(), new KernelSearchResults<T>(items.ToAsyncEnumerable(), results.TotalCount, results.Metadata));
    }

    // A Qdrant point: its id (number or UUID) names the passage; payload values that are strings or numbers fill the mapping's fields.
    private static Passage? FromQdrant(PassageExtractor extractor, PointId? id, IDictionary<string, Value> payload)
    {
        var pointId = id?.PointIdOptionsCase switch
        {
            PointId.PointIdOptionsOneofCase.Num => id.Num.ToString(System.Globalization.CultureInfo.InvariantCulture),
            PointId.PointIdOptionsOneofCase.Uuid => id.Uuid,
            _ => null,
        };
        return extractor.FromFields(n => payload.FirstOrDefault(p => string.Equals(p.Key, n, StringComparison.OrdinalIgnoreCase)).Value switch
        {
            { KindCase: Value.KindOneofCase.StringValue } v => v.StringValue,
            { KindCase: Value.KindOneofCase.IntegerValue } v => v.IntegerValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
            { KindCase: Value.KindOneofCase.DoubleValue } v => v.DoubleValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => null,
        }, pointId);
    }
}
