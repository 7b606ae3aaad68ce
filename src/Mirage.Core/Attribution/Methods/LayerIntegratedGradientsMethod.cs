using Mirage.Core.Models;

namespace Mirage.Core.Attribution.Methods;

/// <summary>
/// Layer integrated gradients (Inseq's <c>layer_integrated_gradients</c>, after Captum): integrated
/// gradients over one decoder layer's output, from that output for the all-zero embedding baseline
/// to its value for the input, with the rest of the model run from the layer.
/// <see cref="AttributionOptions.Layer"/> picks the layer (negative counts from the end); without one
/// it is the input embeddings, Inseq's default, where it equals integrated gradients. Summed over the
/// hidden dimension, the scores still add up to f(e) - f(0): the path's ends are the same outputs.
/// </summary>
public sealed class LayerIntegratedGradientsMethod : IntegratedGradientsMethod
{
    /// <inheritdoc />
    public override string Name => "layer_integrated_gradients";

    /// <inheritdoc />
    protected override int? ActivationLayer(LanguageModel model, AttributionOptions options) => MethodTensors.ChosenLayer(model, options);
}
