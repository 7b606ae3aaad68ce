using Mirage.Core.Citations;

namespace Mirage.Core.Integration;

/// <summary>
/// Reads passages out of the result types of a retrieval library (Semantic Kernel's search
/// results, a vector database's points), for <see cref="PassageExtractor"/>.
/// </summary>
public interface IPassageReader
{
    /// <summary>Whether <paramref name="value"/> is a search result whatever function returned it (its type says so).</summary>
    bool IsSearchResult(object value);

    /// <summary>
    /// Reads one item of a result when its type is this reader's (<paramref name="passage"/> null
    /// when the item holds no text); false leaves the item to the others.
    /// </summary>
    bool TryRead(object item, PassageExtractor extractor, out Passage? passage);

    /// <summary>
    /// For a result that can be enumerated only once: its items, and a copy to hand on in its place;
    /// null for any other value.
    /// </summary>
    Task<(IReadOnlyList<object?> Items, object Copy)?> MaterializeAsync(object value, CancellationToken cancellationToken);
}
