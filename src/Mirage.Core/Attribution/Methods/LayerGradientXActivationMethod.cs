using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution.Methods;

/// <summary>
/// Layer gradient x activation (Inseq's <c>layer_gradient_x_activation</c>, after Captum): the
/// gradient of the target with respect to one decoder layer's output (the residual stream after it)
/// times that output, per position, reduced over the hidden dimension like the other gradient
/// methods. <see cref="AttributionOptions.Layer"/> picks the layer (negative counts from the end);
/// without one it is the input embeddings, Inseq's default, where it equals input x gradient.
/// It locates where in the model the information the target needs sits at each position.
/// </summary>
public sealed class LayerGradientXActivationMethod : GradientAttributionMethod
{
    /// <inheritdoc />
    public override string Name => "layer_gradient_x_activation";

    /// <inheritdoc />
    protected override Tensor ScoreDimensions(Tensor gradient, Tensor embeddings) => gradient * embeddings;

    /// <inheritdoc />
    protected override int? ActivationLayer(LanguageModel model, AttributionOptions options) => MethodTensors.ChosenLayer(model, options);
}
