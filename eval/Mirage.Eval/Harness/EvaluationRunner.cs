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
    [property: JsonPropertyName("seconds_per_item")] double SecondsPerItem)
{
    /// <summary>Necessity and sufficiency of its citations, measured on the model; null when not measured.</summary>
    [JsonPropertyName("faithfulness")]
    public FaithfulnessSummary? Faithfulness { get; init; }

    /// <summary>With generated answers: seconds the model took to write an item's answer, for comparing with <see cref="SecondsPerItem"/>.</summary>
    [JsonPropertyName("generation_seconds_per_item")]
    public double? GenerationSecondsPerItem { get; init; }

    /// <summary>With generated answers: exact precision/recall on the sentences whose value came from another entity's passage.</summary>
    [JsonPropertyName("confusions")]
    public SubsetScores? Confusions { get; init; }
}

/// <summary>Exact precision, recall and F1 (percent) on a subset of sentences, and how many there are.</summary>
public sealed record SubsetScores(
    [property: JsonPropertyName("precision")] double Precision,
    [property: JsonPropertyName("recall")] double Recall,
    [property: JsonPropertyName("f1")] double F1,
    [property: JsonPropertyName("sentences")] int Sentences);

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
    [property: JsonPropertyName("notes")] IReadOnlyList<string> Notes)
{
    /// <summary>Whose answers were cited: <c>gold</c> (the data's) or <c>generated</c> (the model's own).</summary>
    [JsonPropertyName("answers")]
    public string Answers { get; init; } = "gold";
}

/// <summary>What to run besides the citers: the judge, the faithfulness meter, and where the answers came from.</summary>
/// <param name="Judge">The entailment judge for ALCE metrics, or null.</param>
/// <param name="Faithfulness">Measures every citer's citations on the model, or null to skip.</param>
/// <param name="GenerationSecondsPerItem">With generated answers: what writing them took per item.</param>
/// <param name="Answers">Whose answers the items hold: <c>gold</c> or <c>generated</c>.</param>
public sealed record EvaluationSettings(IEntailmentJudge? Judge = null, FaithfulnessMeter? Faithfulness = null, double? GenerationSecondsPerItem = null, string Answers = "gold");

/// <summary>
/// Runs citers side by side on the same items and sentences, scores them, and writes
/// <c>metrics.json</c>, <c>items.jsonl</c> (one line per item and citer) and <c>report.md</c> with
/// <c>chart.svg</c> (and <c>faithfulness.svg</c> when faithfulness was measured) into the output folder.
/// </summary>
public static class EvaluationRunner
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private static readonly JsonSerializerOptions JsonLine = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Evaluates <paramref name="citers"/> on <paramref name="items"/>; progress goes to <paramref name="log"/>.</summary>
    public static async Task<EvaluationSummary> RunAsync(
        string command, string dataName, IReadOnlyList<AlceItem> items, IReadOnlyList<ICiter> citers, EvaluationSettings settings,
        string outputDirectory, TextWriter log, CancellationToken cancellationToken = default)
    {
        if (items.Count == 0)
            throw new ArgumentException("There are no items to evaluate.", nameof(items));
        var judge = settings.Judge;
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
        var runs = citers.Select(c => new CiterRun(c)).ToList();
        var progress = Stopwatch.StartNew();
        for (int i = 0; i < items.Count; i++)
        {
            var item = items[i];
            using var faithfulness = settings.Faithfulness?.Start(item);
            foreach (var run in runs)
            {
                var started = Stopwatch.GetTimestamp();
                var cited = await run.Citer.CiteAsync(item, sentences[i], cancellationToken).ConfigureAwait(false);
                var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
                run.Seconds += seconds;
                var score = await CitationMetrics.ScoreAsync(item, cited, judge, cancellationToken).ConfigureAwait(false);
                run.Scores.Add(score);
                var itemOutcomes = item.GoldCitations is { } gold ? cited.Select((c, s) => CitationMetrics.Outcome(c, gold[s])).ToList() : null;
                foreach (var outcome in itemOutcomes ?? [])
                    run.Outcomes[outcome]++;
                if (item.GoldCitations is { } sourceGold && item.Confusions is { } confusions)
                {
                    for (int s = 0; s < cited.Count; s++)
                    {
                        if (confusions[s])
                            run.Confusions.Add(new ItemScore(cited[s].Length, cited[s].Count(sourceGold[s].Contains), sourceGold[s].Length, null, null));
                    }
                }
                var measured = faithfulness?.Measure(cited);
                run.Faithfulness.AddRange(measured?.OfType<SentenceFaithfulness>() ?? []);
                await lines.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    Id = item.Id,
                    Citer = run.Citer.Name,
                    Seconds = Math.Round(seconds, 4),
                    Sentences = sentences[i].Select((s, k) => new
                    {
                        s.Text,
                        Cited = cited[k],
                        Gold = item.GoldCitations?[k],
                        Outcome = itemOutcomes?[k].ToString().ToLowerInvariant(),
                        Confusion = item.Confusions?[k],
                        Faithfulness = measured?[k],
                    }),
                    score.AlceRecall,
                    score.AlcePrecision,
                }, JsonLine)).ConfigureAwait(false);
            }
            if ((i + 1) % 50 == 0 || i + 1 == items.Count)
            {
                var eta = TimeSpan.FromSeconds(progress.Elapsed.TotalSeconds / (i + 1) * (items.Count - i - 1));
                log.WriteLine($"{i + 1}/{items.Count} items, " + string.Join(", ", runs.Select(r => $"{r.Citer.Name} {r.Seconds / (i + 1):F3} s/item")) + $", eta {eta:hh\\:mm\\:ss}");
            }
        }

        var summaries = runs.Select(run => new CiterSummary(
            run.Citer.Name,
            hasGold ? CitationMetrics.Exact(run.Scores) : null,
            judge is null ? null : CitationMetrics.Alce(run.Scores),
            hasGold ? run.Outcomes.ToDictionary(o => o.Key.ToString().ToLowerInvariant(), o => o.Value) : null,
            run.Seconds / items.Count)
        {
            Faithfulness = settings.Faithfulness is null ? null : FaithfulnessSummary.Of(run.Faithfulness),
            GenerationSecondsPerItem = settings.GenerationSecondsPerItem,
            Confusions = items.Any(i => i.Confusions is not null) && CitationMetrics.Exact(run.Confusions) is var c
                ? new SubsetScores(c.Precision, c.Recall, c.F1, run.Confusions.Count) : null,
        }).ToList();

        var summary = new EvaluationSummary(
            command, dataName, items.Count, sentences.Sum(s => s.Count),
            hasGold ? items.Sum(i => i.GoldCitations!.Count(g => g.Length == 0)) : null,
            hasGold, judge?.Name, summaries, notes) { Answers = settings.Answers };
        await File.WriteAllTextAsync(Path.Combine(outputDirectory, "metrics.json"), JsonSerializer.Serialize(summary, Json), cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(outputDirectory, "chart.svg"), EvaluationReport.Chart(summary), cancellationToken).ConfigureAwait(false);
        if (EvaluationReport.FaithfulnessChart(summary) is { } faithfulnessChart)
            await File.WriteAllTextAsync(Path.Combine(outputDirectory, "faithfulness.svg"), faithfulnessChart, cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(outputDirectory, "report.md"), EvaluationReport.Markdown(summary), cancellationToken).ConfigureAwait(false);
        return summary;
    }

    // What one citer accumulates over the items.
    private sealed class CiterRun(ICiter citer)
    {
        public ICiter Citer { get; } = citer;
        public double Seconds { get; set; }
        public List<ItemScore> Scores { get; } = [];
        public List<ItemScore> Confusions { get; } = [];
        public List<SentenceFaithfulness> Faithfulness { get; } = [];
        public Dictionary<SentenceOutcome, int> Outcomes { get; } = Enum.GetValues<SentenceOutcome>().ToDictionary(o => o, _ => 0);
    }
}
