using Mirage.Core.Models;

namespace Mirage.Core.Attribution;

/// <summary>What a method needs from the model, so callers can plan passes and memory.</summary>
/// <param name="Gradients">Needs backward passes to the input embeddings.</param>
/// <param name="AttentionWeights">Needs attention weights (the explicit attention path).</param>
/// <param name="Perturbation">Runs extra forward passes on perturbed inputs.</param>
public sealed record AttributionCapabilities(bool Gradients, bool AttentionWeights, bool Perturbation);

/// <summary>An attribution method: scores input positions for target steps (one class per method).</summary>
public interface IAttributionMethod
{
    /// <summary>The method's id (Inseq's names: <c>saliency</c>, <c>input_x_gradient</c>, ...).</summary>
    string Name { get; }

    /// <summary>What the method needs from the model.</summary>
    AttributionCapabilities Capabilities { get; }

    /// <summary>Scores every input position for every target of the request.</summary>
    AttributionResult Attribute(LanguageModel model, AttributionRequest request, TargetEvaluator evaluator);

    /// <summary>
    /// An upper bound of the work of attributing <paramref name="targets"/> targets in a
    /// <paramref name="length"/>-token input, in token-passes (a token through one forward pass; a
    /// backward pass counts twice), known before any pass runs, so a service can refuse work past
    /// its budget. The default, a forward and a backward per target, suits gradient methods.
    /// </summary>
    long TokenPasses(int length, int targets, AttributionOptions options) => 3L * length * targets;
}
