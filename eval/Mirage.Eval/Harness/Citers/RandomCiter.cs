using Mirage.Core.Citations;
using Mirage.Eval.Data;

namespace Mirage.Eval.Harness.Citers;

/// <summary>Baseline: one uniformly random passage per sentence (seeded, so runs repeat).</summary>
public sealed class RandomCiter(int seed) : ICiter
{
    private readonly Random _random = new(seed);

    /// <inheritdoc />
    public string Name => "random";

    /// <inheritdoc />
    public Task<IReadOnlyList<int[]>> CiteAsync(AlceItem item, IReadOnlyList<SentenceSpan> sentences, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<int[]>>(sentences.Select(_ => new[] { _random.Next(item.Docs.Count) }).ToList());
}
