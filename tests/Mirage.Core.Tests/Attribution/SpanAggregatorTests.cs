using Mirage.Core.Attribution.Aggregation;
using Mirage.Core.Tokenization;
using Mirage.Tests;

namespace Mirage.Core.Tests.Attribution;

public sealed class SpanAggregatorTests
{
    private static readonly float[][] Rows = [[1, -5, 3, 0, 2], [0, 1, 1, 1, 0]];

    [Theory]
    [InlineData("sum", new[] { -4.0, 5.0 }, new[] { 1.0, 2.0 })]
    [InlineData("mean", new[] { -2.0, 5.0 / 3 }, new[] { 0.5, 2.0 / 3 })]
    [InlineData("max", new[] { 1.0, 3.0 }, new[] { 1.0, 1.0 })]
    [InlineData("absmax", new[] { -5.0, 3.0 }, new[] { 1.0, 1.0 })]
    public void Aggregate_OverSpans(string function, double[] first, double[] second)
    {
        var result = SpanAggregator.Aggregate(Rows, [(0, 2), (2, 5)], function);
        Assert.Equal(first, result[0], (a, b) => Math.Abs(a - b) < 1e-9);
        Assert.Equal(second, result[1], (a, b) => Math.Abs(a - b) < 1e-9);
    }

    [Fact]
    public void AggregateRows_CombinesTargetSteps()
    {
        var combined = SpanAggregator.AggregateRows(Rows, [(0, 2)], "sum");
        Assert.Equal([1f, -4f, 4f, 1f, 2f], combined[0]);
    }

    [Fact]
    public void BadNameOrSpan_FailsClearly()
    {
        Assert.Contains("choose one of sum, mean, max, absmax", Assert.Throws<MirageException>(() => SpanAggregator.Aggregate(Rows, [(0, 1)], "median")).Message);
        Assert.Contains("outside the 5 scored positions", Assert.Throws<MirageException>(() => SpanAggregator.Aggregate(Rows, [(3, 9)])).Message);
    }

    [Fact]
    public void WordSpans_GroupSubwordTokensIntoWords()
    {
        const string text = "Lily and Ben went.";
        var tokens = TextTokenizer.Load(SharedAssets.Stories260KHf).Encode(text);
        var words = SpanAggregator.WordSpans(tokens, text);
        var wordTexts = words.Select(w => string.Concat(tokens.Skip(w.Start).Take(w.End - w.Start).Select(t => text[t.Start..t.End]))).ToList();
        Assert.Equal(["Lily", "and", "Ben", "went", "."], wordTexts);
    }
}
