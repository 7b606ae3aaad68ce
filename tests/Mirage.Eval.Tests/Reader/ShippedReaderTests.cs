using Mirage.Core.Attribution;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Eval.Data;
using Mirage.Eval.Harness.Citers;
using Mirage.Eval.Reader;
using Mirage.Tests;

namespace Mirage.Eval.Tests.Reader;

/// <summary>The reader model committed under models/reader: small, and it reads and cites.</summary>
public sealed class ShippedReaderTests
{
    private static readonly string Directory = SharedAssets.EmbeddedReader;
    private static readonly IReadOnlyList<AlceItem> Items = new ReaderDataGenerator(1, DataSplit.Test).Generate(12).ToList();

    [Fact]
    public void IsAHuggingFaceCheckpoint_OfAtMost20MB()
    {
        long bytes = new DirectoryInfo(Directory).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
        Assert.InRange(bytes, 1, 20L * 1024 * 1024);
        using var model = LanguageModel.Load(Directory);
        Assert.Equal("LlamaForCausalLM", model.Config.Architecture);
    }

    // The shipped reader is far from the 90% target (78.4% of 500 held-out items right, see
    // the README); these checks pin what it does reliably, well above chance, so a regression in
    // loading, tokenization, prompting or attribution shows.
    [Fact]
    public void AnswersHeldOutItems_NamingTheEntity_AndOftenWithEveryFactRight()
    {
        var score = ReaderTraining.Score(Directory, Items);
        // Guessing a value from its pool (12-40 candidates) gets almost none of these right.
        Assert.True(score.Exact >= Items.Count / 4, $"{score.Exact}/{score.Items} answers state every fact");
        Assert.True(score.EntitiesRight >= score.Facts * 0.8, $"{score.EntitiesRight}/{score.Facts} facts name their entity");
    }

    [Fact]
    public async Task MirageCitesAGoldPassage_MoreOftenThanChance()
    {
        using var model = LanguageModel.Load(Directory);
        var citer = new MirageCiter(new MirageCitationEngine(model, AttributionEngine.CreateDefault()), new CitationOptions());
        int sentences = 0, right = 0;
        foreach (var item in Items)
        {
            var cited = await citer.CiteAsync(item, SentenceSplitter.Split(item.Output), TestContext.Current.CancellationToken);
            for (int s = 0; s < cited.Count; s++)
            {
                var gold = item.GoldCitations![s];
                if (gold.Length == 0)
                    continue;
                sentences++;
                if (cited[s].Any(gold.Contains))
                    right++;
            }
        }
        // One random passage per sentence hits a gold one about 27% of the time on these items.
        Assert.True(right >= sentences * 0.4, $"{right}/{sentences} fact sentences cite a gold passage");
    }
}
