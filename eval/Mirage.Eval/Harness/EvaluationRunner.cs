using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Mirage.Core.Citations;
using Mirage.Eval.Data;
using Mirage.Eval.Harness.Citers;

namespace Mirage.Eval.Harness;

/// <summary>One citer's results over the whole data set.</summary>
/// <param name="Name">The citer.</param>
/// <param name="Exact">Exact precision/recall against gold, null without gold.</param>
/// <param name="Alce">ALCE citation precision/recall, null without a judge.</param>
/// <param name="Outcomes">How many sentences ended in each <see cref="SentenceOutcome"/>, null without gold.</param>
/// <param name="SecondsPerItem">Mean wall-clock seconds per item.</param>
public sealed record CiterSummary(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("exact")] PrecisionRecall? Exact,
    [property: JsonPropertyName("alce")] PrecisionRecall? Alce,
    [property: JsonPropertyName("outcomes")] IReadOnlyDictionary<string, int>? Outcomes,
    [property: JsonPropertyName("seconds_per_item")] double SecondsPerItem);

/// <summary>What <c>metrics.json</c> holds.</summary>
public sealed record EvaluationSummary(
    [property: JsonPropertyName("command")] string Command,
    [property: JsonPropertyName("data")] string Data,
    [property: JsonPropertyName("items")] int Items,
    [property: JsonPropertyName("sentences")] int Sentences,
    [property: JsonPropertyName("context_free_sentences")] int? ContextFreeSentences,
    [property: JsonPropertyName("has_gold")] bool HasGold,
    [property: JsonPropertyName("judge")] string? Judge,
    [property: JsonPropertyName("citers")] IReadOnlyList<CiterSummary> Citers,
    [property: JsonPropertyName("notes")] IReadOnlyList<string> Notes);

/// <summary>
/// Runs citers side by side on the same items and sentences, scores them, and writes
/// <c>metrics.json</c>, <c>items.jsonl</c> (one line per item and citer) and <c>report.md</c> with
/// <c>chart.svg</c> into the output folder.
/// </summary>
public static class EvaluationRunner
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private static readonly JsonSerializerOptions JsonLine = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Evaluates <paramref name="citers"/> on <paramref name="items"/>; progress goes to <paramref name="log"/>.</summary>
    public static async Task<EvaluationSummary> RunAsync(
        string command, string dataName, IReadOnlyList<AlceItem> items, IReadOnlyList<ICiter> citers, IEntailmentJudge? judge,
        string outputDirectory, TextWriter log, CancellationToken cancellationToken = default)
    {
        if (items.Count == 0)
            throw new ArgumentException("There are no items to evaluate.", nameof(items));
        bool hasGold = items.All(i => i.GoldCitations is not null);
        var notes = new List<string>();
        if (!hasGold)
        {
            notes.Add("The data has no gold_citations: exact precision/recall and the outcome breakdown need them and are left out.");
            if (judge is { RequiresGold: true })
            {
                notes.Add($"The '{judge.Name}' judge needs gold_citations, so ALCE citation recall/precision are left out too; a model-based judge can score such data.");
                judge = null;
            }
        }
        var sentences = items.Select(i => SentenceSplitter.Split(i.Output)).ToList();
        for (int i = 0; i < items.Count; i++)
        {
            if (items[i].GoldCitations is { } gold && gold.Count != sentences[i].Count)
                throw new InvalidDataException($"Item {items[i].Id}: gold_citations has {gold.Count} entries but the output splits into {sentences[i].Count} sentences.");
        }

        Directory.CreateDirectory(outputDirectory);
        await using var lines = new StreamWriter(Path.Combine(outputDirectory, "items.jsonl"));
        var summaries = new List<CiterSummary>();
        foreach (var citer in citers)
        {
            var scores = new List<ItemScore>();
            var outcomes = Enum.GetValues<SentenceOutcome>().ToDictionary(o => o, _ => 0);
            var clock = new Stopwatch();
            for (int i = 0; i < items.Count; i++)
            {
                var item = items[i];
                clock.Start();
                var started = clock.Elapsed;
                var cited = await citer.CiteAsync(item, sentences[i], cancellationToken).ConfigureAwait(false);
                var seconds = (clock.Elapsed - started).TotalSeconds;
                clock.Stop();
                var score = await CitationMetrics.ScoreAsync(item, cited, judge, cancellationToken).ConfigureAwait(false);
                scores.Add(score);
                var itemOutcomes = item.GoldCitations is { } gold ? cited.Select((c, s) => CitationMetrics.Outcome(c, gold[s])).ToList() : null;
                foreach (var outcome in itemOutcomes ?? [])
                    outcomes[outcome]++;
                await lines.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    Id = item.Id,
                    Citer = citer.Name,
                    Seconds = Math.Round(seconds, 4),
                    Sentences = sentences[i].Select((s, k) => new
                    {
                        s.Text,
                        Cited = cited[k],
                        Gold = item.GoldCitations?[k],
                        Outcome = itemOutcomes?[k].ToString().ToLowerInvariant(),
                    }),
                    score.AlceRecall,
                    score.AlcePrecision,
                }, JsonLine)).ConfigureAwait(false);
                if ((i + 1) % 50 == 0 || i + 1 == items.Count)
                {
                    var eta = TimeSpan.FromSeconds(clock.Elapsed.TotalSeconds / (i + 1) * (items.Count - i - 1));
                    log.WriteLine($"{citer.Name}: {i + 1}/{items.Count} items, {clock.Elapsed.TotalSeconds / (i + 1):F3} s/item, eta {eta:hh\\:mm\\:ss}");
                }
            }
            summaries.Add(new CiterSummary(
                citer.Name,
                hasGold ? CitationMetrics.Exact(scores) : null,
                judge is null ? null : CitationMetrics.Alce(scores),
                hasGold ? outcomes.ToDictionary(o => o.Key.ToString().ToLowerInvariant(), o => o.Value) : null,
                clock.Elapsed.TotalSeconds / items.Count));
        }

        var summary = new EvaluationSummary(
            command, dataName, items.Count, sentences.Sum(s => s.Count),
            hasGold ? items.Sum(i => i.GoldCitations!.Count(g => g.Length == 0)) : null,
            hasGold, judge?.Name, summaries, notes);
        await File.WriteAllTextAsync(Path.Combine(outputDirectory, "metrics.json"), JsonSerializer.Serialize(summary, Json), cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(outputDirectory, "chart.svg"), EvaluationReport.Chart(summary), cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(outputDirectory, "report.md"), EvaluationReport.Markdown(summary), cancellationToken).ConfigureAwait(false);
        return summary;
    }
}
