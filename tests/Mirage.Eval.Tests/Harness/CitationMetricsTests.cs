using Mirage.Eval.Data;
using Mirage.Eval.Harness;

namespace Mirage.Eval.Tests.Harness;

public sealed class CitationMetricsTests
{
    private static readonly AlceItem Item = new(
        "x", "q?", [new AlceDoc("A", "a."), new AlceDoc("B", "b."), new AlceDoc("C", "c.")],
        "One. Two. Three.", GoldCitations: [[0], [1, 2], []]);

    private static Task<ItemScore> Score(params int[][] cited) => CitationMetrics.ScoreAsync(Item, cited, new GoldProvenanceJudge());

    [Fact]
    public async Task ExactCounts_ArePairsAgainstGold()
    {
        var score = await Score([0], [1], []);
        Assert.Equal((2, 2, 3), (score.Citations, score.CorrectCitations, score.GoldCitations));
        var totals = CitationMetrics.Exact([score, await Score([2], [0], [1])]);
        Assert.Equal(100.0 * 2 / 5, totals.Precision, 9); // 2 right of 5 made
        Assert.Equal(100.0 * 2 / 6, totals.Recall, 9);    // 2 found of 6 gold
        Assert.Equal(2 * totals.Precision * totals.Recall / (totals.Precision + totals.Recall), totals.F1, 9);
    }

    [Fact]
    public async Task AlceRecall_NeedsEntailingCitations_AndCountsContextFreeSentencesAsUnsupported()
    {
        var score = await Score([0], [2], []);
        Assert.Equal(2.0 / 3, score.AlceRecall!.Value, 9);
        Assert.Equal(1.0, score.AlcePrecision!.Value, 9);
        // A wrong passage and an out-of-range id both fail recall; their citations are not precise.
        var wrong = await Score([1], [7], []);
        Assert.Equal(0, wrong.AlceRecall);
        Assert.Equal(0, wrong.AlcePrecision);
    }

    [Fact]
    public async Task AlcePrecision_MultiCitationRule()
    {
        // Sentence 1 cites its gold passage and a stray one: the stray one neither entails alone
        // nor is needed (the gold one suffices), so it is the only imprecise citation.
        var stray = await Score([0], [1, 0], []);
        Assert.Equal(2.0 / 3, stray.AlceRecall!.Value, 9);
        Assert.Equal(2.0 / 3, stray.AlcePrecision!.Value, 9);
        // Two gold passages: each entails alone, both precise.
        var both = await Score([0], [1, 2], []);
        Assert.Equal(1.0, both.AlcePrecision!.Value, 9);
        // An unsupported sentence with several citations: none is precise.
        var unsupported = await Score([1, 2], [], []);
        Assert.Equal(0, unsupported.AlcePrecision);
        // ALCE reads at most three citations per sentence.
        var many = await CitationMetrics.ScoreAsync(Item with { Docs = [.. Item.Docs, new AlceDoc("D", "d.")] }, [[1, 2, 3, 0], [1], []], new GoldProvenanceJudge());
        Assert.Equal(1.0 / 3, many.AlceRecall!.Value, 9);
    }

    [Fact]
    public async Task ItemAverages_ThenSetAverage_InPercent()
    {
        var perfect = await Score([0], [1], []);
        var none = await Score([], [], []);
        var totals = CitationMetrics.Alce([perfect, none]);
        Assert.Equal(50 * 2.0 / 3, totals.Recall, 9);
        Assert.Equal(50, totals.Precision, 9); // an item without citations has precision 0
    }

    [Theory]
    [InlineData(new[] { 0 }, new[] { 0 }, SentenceOutcome.Exact)]
    [InlineData(new[] { 0, 1 }, new[] { 0 }, SentenceOutcome.Partial)]
    [InlineData(new[] { 0 }, new[] { 0, 1 }, SentenceOutcome.Partial)]
    [InlineData(new[] { 2 }, new[] { 0 }, SentenceOutcome.Wrong)]
    [InlineData(new int[0], new[] { 0 }, SentenceOutcome.Missed)]
    [InlineData(new[] { 1 }, new int[0], SentenceOutcome.Spurious)]
    [InlineData(new int[0], new int[0], SentenceOutcome.Abstained)]
    public void Outcome_ClassifiesASentence(int[] cited, int[] gold, SentenceOutcome expected) =>
        Assert.Equal(expected, CitationMetrics.Outcome(cited, gold));
}
