using static TorchSharp.torch;

namespace Mirage.Core.Attribution.Methods;

/// <summary>Saliency (Simonyan et al., 2013): |d f / d e_j|, reduced over the embedding dimension.</summary>
public sealed class SaliencyMethod : GradientAttributionMethod
{
    /// <inheritdoc />
    public override string Name => "saliency";

    /// <inheritdoc />
    protected override Tensor ScoreDimensions(Tensor gradient, Tensor embeddings) => gradient.abs();
}
