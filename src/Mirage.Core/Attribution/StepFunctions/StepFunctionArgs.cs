using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution.StepFunctions;

/// <summary>Which way a KL divergence between the with- and without-context distributions is taken.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<KlDirection>))]
public enum KlDirection
{
    /// <summary>KL(P_ctx || P_noctx), as the PECoRe paper writes it (default).</summary>
    ContextToNoContext,
    /// <summary>KL(P_noctx || P_ctx), as Inseq's code computes it.</summary>
    NoContextToContext,
}

/// <summary>
/// The inputs of a step function for K answer steps at once (Inseq's StepFunctionArgs, typed).
/// </summary>
/// <param name="Logits">Logits predicting each step, <c>[K, V]</c>; may carry a gradient graph.</param>
/// <param name="Targets">The answer token of each step, <c>[K]</c> int64.</param>
/// <param name="ContrastTargets">Contrast token per step, <c>[K]</c>; null means the target itself.</param>
/// <param name="ContrastLogits">The contrast distribution's logits, <c>[K, V]</c> (e.g. without context); null means <paramref name="Logits"/>.</param>
/// <param name="KlDirection">Direction of <c>kl_divergence</c>.</param>
public sealed record StepFunctionArgs(
    Tensor Logits,
    Tensor Targets,
    Tensor? ContrastTargets = null,
    Tensor? ContrastLogits = null,
    KlDirection KlDirection = KlDirection.ContextToNoContext);

/// <summary>A per-step score: <c>[K]</c> from <see cref="StepFunctionArgs"/>.</summary>
public delegate Tensor StepFunction(StepFunctionArgs args);
