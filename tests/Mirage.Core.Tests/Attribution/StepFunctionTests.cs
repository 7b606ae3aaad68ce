using Mirage.Core.Attribution.StepFunctions;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Attribution;

public sealed class StepFunctionTests
{
    private static readonly StepFunctionRegistry Registry = StepFunctionRegistry.CreateDefault();

    private static double[] Run(string name, double[,] logits, long[] targets, long[]? contrasts = null, double[,]? contrastLogits = null, KlDirection direction = KlDirection.ContextToNoContext)
    {
        using var scope = NewDisposeScope();
        var args = new StepFunctionArgs(tensor(logits), tensor(targets), contrasts is null ? null : tensor(contrasts),
            contrastLogits is null ? null : tensor(contrastLogits), direction);
        return Registry.Get(name)(args).data<double>().ToArray();
    }

    private static readonly double[,] P = { { 2.0, 0.5, -1.0 }, { 0.0, 0.0, 3.0 } };
    private static readonly double[,] Q = { { 0.1, 1.5, -0.5 }, { 1.0, -2.0, 0.5 } };

    private static double LogSoftmax(double[,] l, int row, int column)
    {
        double max = Enumerable.Range(0, 3).Max(c => l[row, c]);
        return l[row, column] - max - Math.Log(Enumerable.Range(0, 3).Sum(c => Math.Exp(l[row, c] - max)));
    }

    [Fact]
    public void PlainFunctions_MatchTheirDefinitions()
    {
        long[] y = [0, 2];
        Assert.Equal([LogSoftmax(P, 0, 0), LogSoftmax(P, 1, 2)], Run("log_probability", P, y), (a, b) => Math.Abs(a - b) < 1e-12);
        Assert.Equal([Math.Exp(LogSoftmax(P, 0, 0)), Math.Exp(LogSoftmax(P, 1, 2))], Run("probability", P, y), (a, b) => Math.Abs(a - b) < 1e-12);
        Assert.Equal([2.0, 3.0], Run("logit", P, y));
        double entropy = -Enumerable.Range(0, 3).Sum(c => Math.Exp(LogSoftmax(P, 0, c)) * LogSoftmax(P, 0, c));
        Assert.Equal(entropy, Run("entropy", P, y)[0], 1e-12);
    }

    [Fact]
    public void ContrastiveFunctions_UseTheContrastTokenAndDistribution()
    {
        long[] y = [0, 2], contrast = [1, 0];
        Assert.Equal(LogSoftmax(P, 0, 0) - LogSoftmax(P, 0, 1), Run("contrast_logprob_diff", P, y, contrast)[0], 1e-12);
        Assert.Equal(LogSoftmax(P, 1, 2) - LogSoftmax(Q, 1, 2), Run("contrast_logprob_diff", P, y, null, Q)[1], 1e-12);
        Assert.Equal(Math.Exp(LogSoftmax(P, 0, 0)) - Math.Exp(LogSoftmax(P, 0, 1)), Run("contrast_prob_diff", P, y, contrast)[0], 1e-12);
        Assert.Equal(2.0 - 0.5, Run("contrast_logits_diff", P, y, contrast)[0], 1e-12);
        Assert.Equal((LogSoftmax(P, 0, 0) - LogSoftmax(Q, 0, 0)) / Math.Log(2), Run("pcxmi", P, y, contrast, Q)[0], 1e-12);
        // With the target as its own contrast on the same distribution, a contrastive score is exactly zero.
        Assert.All(Run("contrast_prob_diff", P, y, y), v => Assert.Equal(0.0, v));
    }

    [Fact]
    public void KlDivergence_FollowsTheChosenDirection()
    {
        long[] y = [0, 2];
        double KL(double[,] a, double[,] b, int row) => Enumerable.Range(0, 3).Sum(c => Math.Exp(LogSoftmax(a, row, c)) * (LogSoftmax(a, row, c) - LogSoftmax(b, row, c)));
        var paper = Run("kl_divergence", P, y, null, Q);
        var inseq = Run("kl_divergence", P, y, null, Q, KlDirection.NoContextToContext);
        Assert.Equal(KL(P, Q, 0), paper[0], 1e-12);
        Assert.Equal(KL(Q, P, 1), inseq[1], 1e-12);
        Assert.NotEqual(paper[0], inseq[0], 6);
        Assert.All(Run("kl_divergence", P, y, null, P), v => Assert.Equal(0.0, v, 1e-15));
    }

    [Fact]
    public void Registry_RefusesSilentReplacementAndListsNames()
    {
        var registry = StepFunctionRegistry.CreateDefault();
        Assert.Throws<MirageException>(() => registry.Register("logit", StepFunctionLibrary.Probability));
        registry.Register("logit", StepFunctionLibrary.Probability, overwrite: true);
        registry.Register("neg_logit", a => -StepFunctionLibrary.Logit(a));
        Assert.Contains("neg_logit", registry.Names);
        Assert.Contains("kl_divergence, pcxmi", Assert.Throws<MirageException>(() => registry.Get("nope")).Message);
    }
}
