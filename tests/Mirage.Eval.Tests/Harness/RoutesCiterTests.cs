using Mirage.Core.Attribution;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Eval.Data;
using Mirage.Eval.Harness;
using Mirage.Eval.Harness.Citers;
using Mirage.Tests;

namespace Mirage.Eval.Tests.Harness;

/// <summary>The routes method as the harness runs it, on the embedded reader: valid citations, one passage at ratio 1, and better than raw attention.</summary>
public sealed class RoutesCiterTests
{
    [Fact]
    public async Task Routes_CiteValidPassages_AndBeatRawAttention()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var template = new PromptTemplate();
        var engine = new MirageCitationEngine(model);
        var routes = new CitationOptions { Prompt = template }.WithMethod("routes");
        var items = new ReaderDataGenerator(3, DataSplit.Test).Generate(30).ToList();
        var token = TestContext.Current.CancellationToken;

        async Task<double> F1(ICiter citer)
        {
            var scores = new List<ItemScore>();
            foreach (var item in items)
            {
                var sentences = SentenceSplitter.Split(item.Output);
                var cited = await citer.CiteAsync(item, sentences, token);
                Assert.Equal(sentences.Count, cited.Count);
                Assert.All(cited, c => Assert.All(c, p => Assert.InRange(p, 0, item.Docs.Count - 1)));
                scores.Add(await CitationMetrics.ScoreAsync(item, cited, null, token));
            }
            return CitationMetrics.Exact(scores).F1;
        }

        var one = new MirageCiter(engine, routes with { RouteRatio = 1 }, "routes");
        Assert.All(await one.CiteAsync(items[0], SentenceSplitter.Split(items[0].Output), token), c => Assert.True(c.Length <= 1));
        double byRoutes = await F1(new MirageCiter(engine, routes, "routes"));
        double attention = await F1(new AttentionCiter(model, AttributionEngine.CreateDefault(), template));
        Assert.True(byRoutes > attention + 10, $"routes F1 {byRoutes:F1}, attention {attention:F1}");
    }
}
