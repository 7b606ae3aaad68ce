using System.Text.Json.Serialization;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Eval.Data;

namespace Mirage.Eval.Harness;

/// <summary>
/// One cited sentence's faithfulness (docs/algorithms.md, section 5), in nats over all its tokens:
/// necessity and sufficiency of its citations, the mean necessity of same-size passage sets drawn
/// at random, and whether the citations beat them.
/// </summary>
public sealed record SentenceFaithfulness(
    [property: JsonPropertyName("necessity")] double Necessity,
    [property: JsonPropertyName("sufficiency")] double Sufficiency,
    [property: JsonPropertyName("random_necessity")] double RandomNecessity,
    [property: JsonPropertyName("win")] bool Win);

/// <summary>A citer's faithfulness over every sentence it cited: win rate in percent, means in nats.</summary>
public sealed record FaithfulnessSummary(
    [property: JsonPropertyName("necessity_win_rate")] double NecessityWinRate,
    [property: JsonPropertyName("mean_necessity")] double MeanNecessity,
    [property: JsonPropertyName("mean_sufficiency")] double MeanSufficiency,
    [property: JsonPropertyName("sentences")] int Sentences)
{
    /// <summary>The summary of <paramref name="measured"/>; zeros when nothing was cited.</summary>
    public static FaithfulnessSummary Of(IReadOnlyCollection<SentenceFaithfulness> measured) => measured.Count == 0
        ? new(0, 0, 0, 0)
        : new(100.0 * measured.Count(m => m.Win) / measured.Count, measured.Average(m => m.Necessity), measured.Average(m => m.Sufficiency), measured.Count);
}

/// <summary>
/// Measures any citer's citations against the model without gold: per cited sentence, removing
/// its cited passages against removing as many passages at random (every same-size set when there
/// are at most <see cref="RandomSets"/>, else that many drawn), all through one
/// <see cref="ContextAblation"/> per item so citers share the passes.
/// </summary>
public sealed class FaithfulnessMeter(LanguageModel model, PromptTemplate template, int seed = 1)
{
    /// <summary>Random same-size sets a citation set is compared with.</summary>
    public const int RandomSets = 16;

    /// <summary>Starts measuring one item (one forward pass over the full input).</summary>
    public Session Start(AlceItem item)
    {
        var passages = item.ToPassages();
        var input = PreparedCitation.Prepare(model, item.Question, passages, item.Output, template);
        return new Session(ContextAblation.Start(model, input, item.Question, passages, template), input, new Random(seed));
    }

    /// <summary>The measurements of one item, shared by every citer's citations of it.</summary>
    public sealed class Session(ContextAblation ablation, PreparedCitation input, Random random) : IDisposable
    {
        /// <summary>Per sentence: its faithfulness, or null when it cites nothing.</summary>
        public IReadOnlyList<SentenceFaithfulness?> Measure(IReadOnlyList<int[]> cited)
        {
            int count = ablation.PassageCount;
            var work = cited.Select((set, s) =>
            {
                var scored = input.TokensOf(s);
                var valid = set.Where(p => p >= 0 && p < count).Distinct().ToList();
                return (Scored: scored, Cited: valid, Random: valid.Count == 0 ? [] : RandomSetsOf(valid.Count, count));
            }).ToList();
            // Every mask in one call, so the runner orders them for its cache.
            ablation.Score(work.SelectMany(w => w.Random.Select(r => ContextAblation.Without(count, r)))
                .Concat(work.Where(w => w.Cited.Count > 0).SelectMany(w => new[] { ContextAblation.Without(count, w.Cited), ContextAblation.Only(count, w.Cited) })).ToList());
            return work.Select(w =>
            {
                if (w.Cited.Count == 0 || w.Scored.Count == 0)
                    return null;
                var (necessity, sufficiency) = CitationVerifier.Measure(ablation, w.Scored, w.Cited);
                double full = ContextAblation.Sum(ablation.Full, w.Scored);
                var without = ablation.Score(w.Random.Select(r => ContextAblation.Without(count, r)).ToList());
                double randomNecessity = without.Average(scores => full - ContextAblation.Sum(scores, w.Scored));
                return new SentenceFaithfulness(necessity, sufficiency, randomNecessity, necessity > randomNecessity);
            }).ToList();
        }

        private List<int[]> RandomSetsOf(int size, int count)
        {
            var all = Subsets(count, size).Take(RandomSets + 1).ToList();
            if (all.Count <= RandomSets)
                return all;
            return Enumerable.Range(0, RandomSets).Select(_ => Enumerable.Range(0, count).OrderBy(_ => random.Next()).Take(size).Order().ToArray()).ToList();
        }

        private static IEnumerable<int[]> Subsets(int count, int size)
        {
            if (size == 0)
            {
                yield return [];
                yield break;
            }
            for (int first = size - 1; first < count; first++)
            {
                foreach (var rest in Subsets(first, size - 1))
                    yield return [.. rest, first];
            }
        }

        /// <inheritdoc />
        public void Dispose() => ablation.Dispose();
    }
}
