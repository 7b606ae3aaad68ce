using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution.StepFunctions;

/// <summary>
/// The built-in step functions (docs/algorithms.md, section 1), each a few lines over
/// <see cref="StepFunctionArgs"/>; contrastive ones are built from the plain ones.
/// </summary>
public static class StepFunctionLibrary
{
    /// <summary>p(y_t).</summary>
    public static Tensor Probability(StepFunctionArgs a) => LogProbability(a).exp();

    /// <summary>log p(y_t).</summary>
    public static Tensor LogProbability(StepFunctionArgs a) => Gather(a.Logits.log_softmax(-1), a.Targets);

    /// <summary>The logit of y_t.</summary>
    public static Tensor Logit(StepFunctionArgs a) => Gather(a.Logits, a.Targets);

    /// <summary>Entropy of the predictive distribution, in nats.</summary>
    public static Tensor Entropy(StepFunctionArgs a)
    {
        var logP = a.Logits.log_softmax(-1);
        return -(logP.exp() * logP).sum(-1);
    }

    /// <summary>p(y_t) - p'(y'_t): the contrast from the contrast logits and contrast token.</summary>
    public static Tensor ContrastProbDiff(StepFunctionArgs a) => Probability(a) - Probability(Contrast(a));

    /// <summary>log p(y_t) - log p'(y'_t) (Inseq's <c>contrast_prob_diff</c> with <c>logprob=True</c>; MIRAGE's CCI target).</summary>
    public static Tensor ContrastLogProbDiff(StepFunctionArgs a) => LogProbability(a) - LogProbability(Contrast(a));

    /// <summary>logit(y_t) - logit'(y'_t).</summary>
    public static Tensor ContrastLogitsDiff(StepFunctionArgs a) => Logit(a) - Logit(Contrast(a));

    /// <summary>KL divergence between the distribution and its contrast, direction per <see cref="StepFunctionArgs.KlDirection"/>.</summary>
    public static Tensor KlDivergence(StepFunctionArgs a)
    {
        var p = a.Logits.log_softmax(-1);
        var q = (a.ContrastLogits ?? a.Logits).log_softmax(-1);
        if (a.KlDirection == KlDirection.NoContextToContext)
            (p, q) = (q, p);
        return (p.exp() * (p - q)).sum(-1);
    }

    /// <summary>P-CXMI: log2 p(y_t) - log2 p'(y_t), the pointwise conditional mutual information in bits.</summary>
    public static Tensor Pcxmi(StepFunctionArgs a)
    {
        using var ln2 = Math.Log(2).ToScalar();
        return (LogProbability(a) - LogProbability(a with { Logits = a.ContrastLogits ?? a.Logits })) / ln2;
    }

    private static StepFunctionArgs Contrast(StepFunctionArgs a) =>
        a with { Logits = a.ContrastLogits ?? a.Logits, Targets = a.ContrastTargets ?? a.Targets };

    private static Tensor Gather(Tensor values, Tensor targets) => values.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
}
