using Mirage.Core.Citations;
using Mirage.Core.Flow;
using Mirage.Core.Models;
using Mirage.Eval.Data;

namespace Mirage.Eval.Harness.Citers;

/// <summary>
/// Information-flow routes (LM-TT; Ferrando &amp; Voita, 2024): the outputs that predict a sentence's
/// tokens are traced back to the prompt, and each passage gets the share of that flow starting at
/// its tokens. The passage with the largest share is cited, with any other whose share is at least
/// <paramref name="ratio"/> of it, <paramref name="atMost"/> at most. One decomposed pass and the
/// routes search per sentence; no gradients.
/// </summary>
public sealed class RoutesCiter(LanguageModel model, PromptTemplate template, double ratio, int atMost) : ICiter
{
    /// <summary>The share, relative to the top passage's, another passage needs to be cited too (chosen on the development items).</summary>
    public const double DefaultRatio = 0.5;

    /// <inheritdoc />
    public string Name => "routes";

    /// <inheritdoc />
    public Task<IReadOnlyList<int[]>> CiteAsync(AlceItem item, IReadOnlyList<SentenceSpan> sentences, CancellationToken cancellationToken = default)
    {
        var input = PreparedCitation.Prepare(model, item.Question, item.ToPassages(), item.Output, template);
        int[] ids = [.. input.PromptIds, .. input.AnswerIds];
        var cited = new List<int[]>();
        for (int s = 0; s < sentences.Count; s++)
        {
            var tokens = input.TokensOf(s);
            if (tokens.Count == 0)
            {
                cited.Add([]);
                continue;
            }
            var graph = RouteTracer.Trace(model, ids, [.. tokens.Select(k => input.PromptIds.Length + k - 1)], cancellationToken: cancellationToken);
            var shares = input.Passages.Select(p => graph.TokenShares.Skip(p.TokenStart).Take(p.TokenEnd - p.TokenStart).Sum()).ToArray();
            double top = shares.Max();
            cited.Add(top <= 0 ? [] : [.. Enumerable.Range(0, shares.Length).Where(p => shares[p] >= ratio * top).OrderByDescending(p => shares[p]).Take(atMost)]);
        }
        return Task.FromResult<IReadOnlyList<int[]>>(cited);
    }
}
