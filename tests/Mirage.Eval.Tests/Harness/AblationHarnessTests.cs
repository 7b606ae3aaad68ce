using System.Text.Json.Nodes;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Eval.Data;
using Mirage.Eval.Harness;
using Mirage.Eval.Harness.Citers;
using Mirage.Tests;

namespace Mirage.Eval.Tests.Harness;

/// <summary>The ContextCite surrogate, source gold for generated answers, and faithfulness without gold.</summary>
public sealed class AblationHarnessTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Lasso_RecoversPlantedWeights_AndZeroesTheRest()
    {
        var random = new Random(3);
        double[] planted = [2.5, 0, -1.5, 0, 4];
        var rows = Enumerable.Range(0, 64).Select(_ => planted.Select(_ => (double)random.Next(2)).ToArray()).ToList();
        var targets = rows.Select(r => 7 + r.Zip(planted).Sum(p => p.First * p.Second) + 0.01 * (random.NextDouble() - 0.5)).ToList();

        var (weights, intercept) = Lasso.Fit(rows, targets, alpha: 0.01);
        for (int j = 0; j < planted.Length; j++)
            Assert.Equal(planted[j], weights[j], 0.05);
        Assert.Equal(7, intercept, 0.1);
        // A penalty larger than any column's fit zeroes every weight: the intercept is the mean.
        var (none, mean) = Lasso.Fit(rows, targets, alpha: 100);
        Assert.All(none, w => Assert.Equal(0, w));
        Assert.Equal(targets.Average(), mean, 1e-9);
    }

    [Fact]
    public void SourceGold_FollowsTheValue_IntoAnotherEntitysPassage()
    {
        AlceDoc[] docs =
        [
            new("Lousdrur Rourti", "Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grouscelford."),
            new("Caszais Rourti", "Caszais Rourti was born in Grekbrothholm."),
            new("Lousdrur Rourti", "Grothpon Droktom works for Cimgun Labs. Grothpon Droktom once met Lousdrur Rourti at a market."),
        ];
        var sentences = SentenceSplitter.Split("Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grekbrothholm. "
            + "Lousdrur Rourti works as a baker. I hope this helps.");
        var (gold, confusions) = SourceGold.For(docs, sentences)!.Value;
        // The right fact: its own passage, not the one repeating the value for someone else.
        Assert.Equal([0], gold[0]);
        // A value copied from the similar name's passage: that passage, flagged as a confusion.
        Assert.Equal([1], gold[1]);
        // A value no passage states, and a sentence stating no fact: no source.
        Assert.Empty(gold[2]);
        Assert.Empty(gold[3]);
        Assert.Equal([false, true, false, false], confusions);
        Assert.Null(SourceGold.For([new AlceDoc("t", "Nothing here states a fact.")], sentences));
    }

    [Fact]
    public void FaithfulnessSummary_CountsWinsAndAverages()
    {
        var summary = FaithfulnessSummary.Of([new(3, -0.5, 1, true), new(0.5, -2, 1, false), new(2, 0.5, 0.1, true), new(1, 0, 0.2, true)]);
        Assert.Equal(75, summary.NecessityWinRate);
        Assert.Equal(1.625, summary.MeanNecessity, 1e-12);
        Assert.Equal(-0.5, summary.MeanSufficiency, 1e-12);
        Assert.Equal(4, summary.Sentences);
        Assert.Equal(0, FaithfulnessSummary.Of([]).Sentences);
    }

    [Fact]
    public void Faithfulness_OfTheGoldPassage_BeatsRandomSets_OnTheReader()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var meter = new FaithfulnessMeter(model, new PromptTemplate());
        var items = new ReaderDataGenerator(7, DataSplit.Test, new ReaderDataShape { Repetition = ValueRepetition.GoldOnce }).Generate(12).ToList();
        var gold = new List<SentenceFaithfulness>();
        var wrong = new List<SentenceFaithfulness>();
        foreach (var item in items)
        {
            using var session = meter.Start(item);
            gold.AddRange(session.Measure(item.GoldCitations!).OfType<SentenceFaithfulness>());
            // Every sentence citing a passage that is not its gold one.
            wrong.AddRange(session.Measure(item.GoldCitations!.Select(g => g.Length == 0 ? g : new[] { Enumerable.Range(0, item.Docs.Count).First(p => !g.Contains(p)) }).ToList())
                .OfType<SentenceFaithfulness>());
            // A sentence without citations is not measured.
            Assert.All(session.Measure(item.GoldCitations!.Select(_ => Array.Empty<int>()).ToList()), Assert.Null);
        }
        Assert.True(gold.Count >= 12);
        Assert.True(FaithfulnessSummary.Of(gold).NecessityWinRate >= 90, $"{FaithfulnessSummary.Of(gold)}");
        Assert.True(FaithfulnessSummary.Of(wrong).NecessityWinRate <= 40, $"{FaithfulnessSummary.Of(wrong)}");
        Assert.True(FaithfulnessSummary.Of(gold).MeanSufficiency > FaithfulnessSummary.Of(wrong).MeanSufficiency + 1);
    }

    [Fact]
    public async Task GeneratedAnswers_AreCached_ScoredAgainstSourceGold_WithConfusionsAndFaithfulness()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var template = new PromptTemplate();
        var items = new ReaderDataGenerator(2, DataSplit.Test).Generate(24).ToList();
        var cache = Path.Combine(_temp.Path, "generated-answers.json");
        var (generated, seconds, empty) = await GeneratedAnswers.LoadAsync(model, items, template, 96, cache, TextWriter.Null, TestContext.Current.CancellationToken);
        Assert.Equal(0, empty);
        Assert.True(seconds > 0);
        Assert.All(generated, i => Assert.Equal(SentenceSplitter.Split(i.Output).Count, i.GoldCitations!.Count));
        Assert.Contains(generated, i => i.Output != items.First(o => o.Id == i.Id).Output);
        // Read back from the cache: the same answers, and nothing is generated (an edited cache shows it).
        await File.WriteAllTextAsync(cache, (await File.ReadAllTextAsync(cache)).Replace(generated[0].Output, "Edited answer."));
        var (again, _, _) = await GeneratedAnswers.LoadAsync(model, items, template, 96, cache, TextWriter.Null, TestContext.Current.CancellationToken);
        Assert.Equal("Edited answer.", again[0].Output);
        Assert.Equal(generated.Skip(1).Select(i => i.Output), again.Skip(1).Select(i => i.Output));

        var engine = new MirageCitationEngine(model);
        var summary = await EvaluationRunner.RunAsync("cmd", "dev.json", generated, [new MirageCiter(engine, new CitationOptions { Prompt = template }), new Bm25Citer()],
            new EvaluationSettings(new GoldProvenanceJudge(), new FaithfulnessMeter(model, template), seconds, "generated"), _temp.Path, TextWriter.Null, TestContext.Current.CancellationToken);
        var metrics = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_temp.Path, "metrics.json")))!;
        Assert.Equal("generated", metrics["answers"]!.GetValue<string>());
        foreach (var citer in metrics["citers"]!.AsArray())
        {
            Assert.Equal(seconds, citer!["generation_seconds_per_item"]!.GetValue<double>(), 1e-9);
            foreach (var field in new[] { "necessity_win_rate", "mean_necessity", "mean_sufficiency", "sentences" })
                Assert.NotNull(citer["faithfulness"]![field]);
            foreach (var field in new[] { "precision", "recall", "f1", "sentences" })
                Assert.NotNull(citer["confusions"]![field]);
        }
        var (ablation, bm25) = (summary.Citers[0], summary.Citers[1]);
        Assert.True(ablation.Faithfulness!.NecessityWinRate >= 90, $"{ablation.Faithfulness}");
        Assert.True(ablation.Exact!.F1 > 70, $"{ablation.Exact}");
        var report = await File.ReadAllTextAsync(Path.Combine(_temp.Path, "report.md"));
        Assert.Contains("| mirage | ", report);
        Assert.Contains("faithfulness.svg", report);
        var chart = System.Xml.Linq.XDocument.Load(Path.Combine(_temp.Path, "faithfulness.svg"));
        // Two citers, two bars each (win rate, confusions F1), besides the two legend swatches.
        Assert.Equal(4, chart.Descendants().Count(e => e.Name.LocalName == "rect" && e.Attribute("height")?.Value != "10"));
    }

    [Fact]
    public async Task Ablation_CitesBothPassages_WhenAFactIsStatedTwice()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var template = new PromptTemplate();
        // Gold answers whose sentence has two gold passages (a second copy of the fact).
        var twice = new ReaderDataGenerator(11, DataSplit.Test).Generate(200).Where(i => i.GoldCitations!.Any(g => g.Length == 2)).Take(12).ToList();
        Assert.True(twice.Count >= 8);
        var citer = new MirageCiter(new MirageCitationEngine(model), new CitationOptions { Prompt = template });
        int both = 0, total = 0;
        foreach (var item in twice)
        {
            var cited = await citer.CiteAsync(item, SentenceSplitter.Split(item.Output), TestContext.Current.CancellationToken);
            for (int s = 0; s < cited.Count; s++)
            {
                if (item.GoldCitations![s].Length != 2)
                    continue;
                total++;
                both += item.GoldCitations[s].All(cited[s].Contains) ? 1 : 0;
            }
        }
        Assert.True(both >= total * 0.75, $"both cited in {both} of {total}");
    }

    [Fact]
    public async Task AttentionProbe_ReadsTheCitersWeights_AndEveryVariant()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var template = new PromptTemplate();
        var items = new ReaderDataGenerator(3, DataSplit.Test).Generate(15).ToList();
        var variants = AttentionProbe.Run(model, items, template);
        // 2 layers x 4 heads, summed and peak, plus 2 layer means and 3 all-head readings, each over all or CTI-selected tokens.
        Assert.Equal(2 * (8 * 2 + 2 + 3), variants.Count);
        Assert.All(variants.Where(v => v.Name.EndsWith("all tokens", StringComparison.Ordinal)), v => Assert.Equal(0, v.Abstained));
        Assert.Contains(variants, v => v.Name.EndsWith("CTI-selected tokens", StringComparison.Ordinal) && v.Abstained > 0);

        // The citer's own reading (mean of every head, summed over the passage, all tokens) scores what the citer does.
        var citer = new AttentionCiter(model, Mirage.Core.Attribution.AttributionEngine.CreateDefault(), template);
        var scores = new List<ItemScore>();
        foreach (var item in items)
            scores.Add(await CitationMetrics.ScoreAsync(item, await citer.CiteAsync(item, SentenceSplitter.Split(item.Output), TestContext.Current.CancellationToken), null, TestContext.Current.CancellationToken));
        var reading = variants.Single(v => v.Name == "mean of all heads, summed, all tokens");
        Assert.Equal(CitationMetrics.Exact(scores).F1, reading.Exact.F1, 1e-9);
    }
}
