using static TorchSharp.torch;

namespace Mirage.Core.Attribution.Methods;

/// <summary>Input x gradient (Shrikumar et al., 2016): (d f / d e_j) * e_j, reduced over the embedding dimension.</summary>
public sealed class InputXGradientMethod : GradientAttributionMethod
{
    /// <inheritdoc />
    public override string Name => "input_x_gradient";

    /// <inheritdoc />
    protected override Tensor ScoreDimensions(Tensor gradient, Tensor embeddings) => gradient * embeddings;
}
