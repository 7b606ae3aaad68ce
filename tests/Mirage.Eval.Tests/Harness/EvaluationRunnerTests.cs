using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using Mirage.Core.Attribution;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Eval.Data;
using Mirage.Eval.Harness;
using Mirage.Eval.Harness.Citers;
using Mirage.Tests;

namespace Mirage.Eval.Tests.Harness;

public sealed class EvaluationRunnerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static IReadOnlyList<AlceItem> Items(int count) => new ReaderDataGenerator(5, DataSplit.Test).Generate(count).ToList();

    [Fact]
    public async Task Run_WritesMetricsItemsReportAndChart_ForEveryCiter()
    {
        var items = Items(30);
        var log = new StringWriter();
        var summary = await EvaluationRunner.RunAsync("mirage-eval run ...", "test.json", items, [new Bm25Citer(), new RandomCiter(1)], new EvaluationSettings(new GoldProvenanceJudge()), _temp.Path, log);

        var metrics = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_temp.Path, "metrics.json")))!;
        Assert.Equal(30, metrics["items"]!.GetValue<int>());
        Assert.True(metrics["has_gold"]!.GetValue<bool>());
        var bm25 = metrics["citers"]![0]!;
        Assert.Equal("bm25", bm25["name"]!.GetValue<string>());
        foreach (var field in new[] { "precision", "recall", "f1" })
        {
            Assert.InRange(bm25["exact"]![field]!.GetValue<double>(), 0, 100);
            Assert.InRange(bm25["alce"]![field]!.GetValue<double>(), 0, 100);
        }
        Assert.Equal(summary.Sentences, bm25["outcomes"]!.AsObject().Sum(o => o.Value!.GetValue<int>()));
        // Lexical matching finds copied sentences far better than chance.
        Assert.True(summary.Citers[0].Exact!.F1 > summary.Citers[1].Exact!.F1 + 30);

        var lines = await File.ReadAllLinesAsync(Path.Combine(_temp.Path, "items.jsonl"));
        Assert.Equal(60, lines.Length);
        var first = JsonNode.Parse(lines[0])!;
        Assert.Equal(items[0].Id, first["id"]!.GetValue<string>());
        Assert.Equal(items[0].GoldCitations!.Count, first["sentences"]!.AsArray().Count);

        var report = await File.ReadAllTextAsync(Path.Combine(_temp.Path, "report.md"));
        Assert.Contains("| bm25 |", report);
        Assert.Contains("chart.svg", report);
        var svg = XDocument.Load(Path.Combine(_temp.Path, "chart.svg"));
        Assert.Equal(6, svg.Descendants().Count(e => e.Name.LocalName == "rect" && e.Attribute("height")?.Value != "10"));
        Assert.Contains("30/30 items, bm25 ", log.ToString());
    }

    [Fact]
    public async Task PlainAlceFile_WithoutGold_SaysWhichMetricsNeedIt()
    {
        var path = Path.Combine(_temp.Path, "plain.json");
        var plain = Items(5).Select(i => new { question = i.Question, docs = i.Docs.Select(d => new { title = d.Title, text = d.Text }), output = i.Output + " [1]" });
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(new { data = plain }));
        var items = await AlceFile.LoadAsync(path);
        Assert.Equal("0", items[0].Id);
        Assert.DoesNotContain("[1]", items[0].Output);

        var summary = await EvaluationRunner.RunAsync("cmd", path, items, [new Bm25Citer()], new EvaluationSettings(new GoldProvenanceJudge()), Path.Combine(_temp.Path, "out"), TextWriter.Null);
        Assert.False(summary.HasGold);
        Assert.Null(summary.Citers[0].Exact);
        Assert.Null(summary.Citers[0].Alce);
        Assert.Contains(summary.Notes, n => n.Contains("exact precision/recall") && n.Contains("gold_citations"));
        Assert.Contains(summary.Notes, n => n.Contains("ALCE citation recall/precision"));
        Assert.Contains("n/a", await File.ReadAllTextAsync(Path.Combine(_temp.Path, "out", "report.md")));
    }

    [Fact]
    public async Task AlceFile_StripsMarksCutsAtNewline_AndNamesBadItems()
    {
        var path = Path.Combine(_temp.Path, "a.json");
        await File.WriteAllTextAsync(path, """[{"id": "q1", "question": "q?", "docs": [{"title": "t", "text": "x"}], "output": "A [1][2]. B [1, 2].\nignored", "extra": 1}]""");
        var item = Assert.Single(await AlceFile.LoadAsync(path));
        Assert.Equal("A. B.", item.Output);
        Assert.Equal("q1", item.Id);

        await File.WriteAllTextAsync(path, """[{"question": "q?", "docs": [], "output": "A."}]""");
        var error = await Assert.ThrowsAsync<InvalidDataException>(() => AlceFile.LoadAsync(path));
        Assert.Contains("item 0", error.Message);
        await Assert.ThrowsAsync<FileNotFoundException>(() => AlceFile.LoadAsync(Path.Combine(_temp.Path, "missing.json")));
    }

    [Fact]
    public async Task ModelCiters_CiteEverySentence_WithValidPassages()
    {
        using var model = LanguageModel.Load(SharedAssets.Stories260KHf);
        var items = new ReaderDataGenerator(2, DataSplit.Test, new ReaderDataShape { MinPassages = 1, MaxPassages = 2 }).Generate(3).ToList();
        var attribution = AttributionEngine.CreateDefault();
        ICiter[] citers = [new MirageCiter(new MirageCitationEngine(model, attribution), new CitationOptions()), new AttentionCiter(model, attribution, new PromptTemplate())];
        foreach (var citer in citers)
        {
            foreach (var item in items)
            {
                var sentences = SentenceSplitter.Split(item.Output);
                var cited = await citer.CiteAsync(item, sentences);
                Assert.Equal(sentences.Count, cited.Count);
                Assert.All(cited, c => Assert.All(c, p => Assert.InRange(p, 0, item.Docs.Count - 1)));
            }
        }
    }
}
