using Mirage.Core.Models;

namespace Mirage.Core.Attribution;

/// <summary>An attribution method: scores input positions for target steps (one class per method).</summary>
public interface IAttributionMethod
{
    /// <summary>The method's id (Inseq's names: <c>saliency</c>, <c>input_x_gradient</c>, ...).</summary>
    string Name { get; }

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
