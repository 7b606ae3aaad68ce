using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Models;

public sealed class TokenLogProbsTests
{
    [Theory]
    [InlineData(7, 300_000)] // a few rows per step, the last step shorter
    [InlineData(9, 5)]       // every row in one step
    public void RowByRow_EqualsTheWholeSoftmax(int rows, int vocabulary)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        var logits = randn([rows, vocabulary], ScalarType.Float64, generator: generator).Times(4);
        var targets = randint(0, vocabulary, [rows], generator: generator);
        var expected = logits.log_softmax(-1).gather(1, targets.unsqueeze(1)).squeeze(1);

        var actual = TokenLogProbs.Of(logits, targets);

        Assert.Equal(ScalarType.Float64, actual.dtype);
        Assert.True(actual.allclose(expected, rtol: 0, atol: 1e-12));
    }
}
