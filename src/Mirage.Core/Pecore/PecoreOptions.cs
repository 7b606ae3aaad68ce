using Mirage.Core.Attribution;
using Mirage.Core.Attribution.StepFunctions;

namespace Mirage.Core.Pecore;

/// <summary>PECoRe's settings: how context-sensitive tokens are found (CTI) and explained (CCI).</summary>
public sealed record PecoreOptions
{
    /// <summary>CTI metric: a step function comparing the with- and without-context distributions.</summary>
    /// <value>Default <c>kl_divergence</c>.</value>
    public string CtiMetric { get; init; } = "kl_divergence";

    /// <summary>Direction of the KL divergence, recorded in the output.</summary>
    /// <value>Default <see cref="KlDirection.ContextToNoContext"/> (the paper's; Inseq's code uses the other).</value>
    public KlDirection KlDirection { get; init; } = KlDirection.ContextToNoContext;

    /// <summary>k in the selection threshold mean + k * std.</summary>
    /// <value>Default 1.</value>
    public double CtiStdThreshold { get; init; } = 1.0;

    /// <summary>The largest |<see cref="CtiStdThreshold"/>| accepted.</summary>
    public const double MaxCtiStdThreshold = 1000;

    /// <summary>Delta degrees of freedom of that std: 0 population (MIRAGE), 1 sample (Inseq).</summary>
    /// <value>Default 0.</value>
    public int CtiStdDdof { get; init; }

    /// <summary>Keep at most this many selected tokens (largest |score| first); null for no limit.</summary>
    public int? CtiTopK { get; init; }

    /// <summary>CCI attribution method.</summary>
    /// <value>Default <c>saliency</c>.</value>
    public string CciMethod { get; init; } = "saliency";

    /// <summary>
    /// CCI target: log p_ctx(y) - log p_ctx(y') when the contrast differs from the answer token,
    /// else log p_ctx(y) - log p_noctx(y) (MIRAGE's rule).
    /// </summary>
    /// <value>Default <c>contrast_logprob_diff</c>.</value>
    public string CciTarget { get; init; } = "contrast_logprob_diff";

    /// <summary>Attribution settings for CCI (reduction, gradient strategy, chunk size, ...).</summary>
    public AttributionOptions Attribution { get; init; } = new();

    /// <summary>Checks values and names against the registries; throws naming what is wrong.</summary>
    public void Validate(AttributionEngine engine)
    {
        engine.StepFunctions.Get(CtiMetric);
        engine.StepFunctions.Get(CciTarget);
        engine.Methods.Get(CciMethod);
        ValidateValues();
    }

    /// <summary>Checks the numeric settings (what needs no registry); throws naming what is wrong.</summary>
    public void ValidateValues()
    {
        Attribution.Validate();
        if (CtiStdDdof is not (0 or 1))
            throw new MirageException($"CtiStdDdof must be 0 (population) or 1 (sample), got {CtiStdDdof}.");
        if (CtiTopK is < 1)
            throw new MirageException($"CtiTopK must be at least 1 when set, got {CtiTopK}.");
        // Beyond a few hundred deviations nothing (or everything) is selected anyway, and a huge k
        // makes the threshold infinite, which no JSON result can hold.
        if (!(Math.Abs(CtiStdThreshold) <= MaxCtiStdThreshold))
            throw new MirageException($"CtiStdThreshold must be a number between -{MaxCtiStdThreshold} and {MaxCtiStdThreshold}, got {CtiStdThreshold}.");
    }
}
