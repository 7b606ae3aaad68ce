using Mirage.Core.Citations;
using Mirage.Eval.Data;

namespace Mirage.Eval.Harness.Citers;

/// <summary>MIRAGE through the product's own <see cref="ICitationEngine"/>, with the given options.</summary>
public sealed class MirageCiter(ICitationEngine engine, CitationOptions options, string name = "mirage") : ICiter
{
    /// <inheritdoc />
    public string Name => name;

    /// <inheritdoc />
    public async Task<IReadOnlyList<int[]>> CiteAsync(AlceItem item, IReadOnlyList<SentenceSpan> sentences, CancellationToken cancellationToken = default)
    {
        var result = await engine.CiteAsync(new CitationRequest(item.Question, item.ToPassages(), item.Output, options), cancellationToken).ConfigureAwait(false);
        if (result.Sentences.Count != sentences.Count)
            throw new InvalidOperationException($"{item.Id}: MIRAGE split the answer into {result.Sentences.Count} sentences, the harness into {sentences.Count}.");
        return result.Sentences.Select(s => s.Citations.Select(c => c.PassageIndex).ToArray()).ToList();
    }
}
