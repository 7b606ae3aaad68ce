using Mirage.Core.Citations;
using Mirage.Eval.Data;

namespace Mirage.Eval.Harness.Citers;

/// <summary>
/// Something that cites an answer's sentences: for each sentence, the 0-based indices of the
/// passages it cites, best first. The harness runs every citer on the same items and sentences.
/// </summary>
public interface ICiter
{
    /// <summary>The name shown in reports (stable: it keys metrics.json).</summary>
    string Name { get; }

    /// <summary>Cites each of <paramref name="sentences"/> (the split of <c>item.Output</c>) against <c>item.Docs</c>.</summary>
    Task<IReadOnlyList<int[]>> CiteAsync(AlceItem item, IReadOnlyList<SentenceSpan> sentences, CancellationToken cancellationToken = default);
}
