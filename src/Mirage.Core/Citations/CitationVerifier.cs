namespace Mirage.Core.Citations;

/// <summary>
/// A cited sentence's measured support: necessity = g(all passages) - g(without the cited ones),
/// sufficiency = g(only the cited ones) - g(all passages), with g the summed log-probability (nats)
/// of the sentence's scored tokens; <see cref="Verified"/> when both meet the request's bounds.
/// </summary>
/// <param name="Necessity">How much removing the cited passages lowers the sentence (larger is more faithful).</param>
/// <param name="Sufficiency">How the sentence fares with only the cited passages (0 is as with all; more negative is worse).</param>
/// <param name="Tokens">The answer tokens scored.</param>
/// <param name="Verified">Whether necessity and sufficiency meet <see cref="VerificationOptions"/>.</param>
public sealed record CitationSupport(double Necessity, double Sufficiency, IReadOnlyList<int> Tokens, bool Verified);

/// <summary>Verified citations: measures every cited sentence's necessity and sufficiency by ablation, for any citer.</summary>
public static class CitationVerifier
{
    /// <summary>
    /// Necessity and sufficiency of citing <paramref name="cited"/> (0-based passages) for the
    /// sentence whose scored tokens are <paramref name="scored"/>; two masks, run with any others
    /// the caller batches through the same <paramref name="ablation"/>.
    /// </summary>
    public static (double Necessity, double Sufficiency) Measure(ContextAblation ablation, IReadOnlyList<int> scored, IReadOnlyCollection<int> cited)
    {
        ArgumentNullException.ThrowIfNull(ablation);
        var runs = ablation.Score([ContextAblation.Without(ablation.PassageCount, cited), ContextAblation.Only(ablation.PassageCount, cited)]);
        double full = ContextAblation.Sum(ablation.Full, scored);
        return (full - ContextAblation.Sum(runs[0], scored), ContextAblation.Sum(runs[1], scored) - full);
    }

    /// <summary>
    /// The sentences with <see cref="CitedSentence.Support"/> set on each one that cites something.
    /// A sentence is scored on the tokens <see cref="AblationOptions.Tokens"/> names, or on all its
    /// tokens when that leaves none (a citer other than MIRAGE may cite a sentence CTI passed over).
    /// </summary>
    public static IReadOnlyList<CitedSentence> Verify(ContextAblation ablation, IReadOnlyList<CitedSentence> sentences, IReadOnlyList<AnswerToken> tokens, CitationOptions options,
        CancellationToken cancellationToken = default)
    {
        var bounds = options.Verify ?? throw new ArgumentException("The options ask for no verification.", nameof(options));
        var work = sentences.Where(s => s.Citations.Count > 0).Select(s =>
        {
            var scored = AblationCitations.ScoredTokens(tokens, s.Index, options.Ablation.Tokens);
            return (Sentence: s, Scored: scored.Count > 0 ? scored : AblationCitations.ScoredTokens(tokens, s.Index, ScoredTokens.All), Cited: s.Citations.Select(c => c.PassageIndex).ToList());
        }).ToList();
        // All masks in one call, so the runner orders them for its cache.
        ablation.Score(work.SelectMany(w => new[] { ContextAblation.Without(ablation.PassageCount, w.Cited), ContextAblation.Only(ablation.PassageCount, w.Cited) }).ToList(), cancellationToken);
        var supports = work.ToDictionary(w => w.Sentence.Index, w =>
        {
            var (necessity, sufficiency) = Measure(ablation, w.Scored, w.Cited);
            return new CitationSupport(necessity, sufficiency, w.Scored, necessity >= bounds.MinNecessity && sufficiency >= bounds.MinSufficiency);
        });
        return sentences.Select(s => supports.TryGetValue(s.Index, out var support) ? s with { Support = support } : s).ToList();
    }
}
