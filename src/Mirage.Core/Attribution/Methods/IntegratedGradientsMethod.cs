using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution.Methods;

/// <summary>
/// Integrated gradients (Sundararajan et al., 2017) from an all-zero embedding baseline:
/// (e - b) * integral over a in [0, 1] of d f / d e at b + a (e - b), reduced over the embedding
/// dimension. The integral uses Gauss-Legendre quadrature with
/// <see cref="AttributionOptions.IntegrationSteps"/> points (Captum's default rule), exact for
/// polynomials of degree 2n - 1; with <see cref="EmbeddingReduction.Sum"/> the scores add up to
/// f(e) - f(b) (completeness).
/// </summary>
public sealed class IntegratedGradientsMethod : GradientAttributionMethod
{
    /// <inheritdoc />
    public override string Name => "integrated_gradients";

    /// <inheritdoc />
    public override long TokenPasses(int length, int targets, AttributionOptions options) => base.TokenPasses(length, targets, options) * options.IntegrationSteps;

    /// <inheritdoc />
    protected override Tensor ScoreDimensions(Tensor gradient, Tensor embeddings) => gradient * embeddings;

    /// <inheritdoc />
    public override AttributionResult Attribute(LanguageModel model, AttributionRequest request, TargetEvaluator evaluator)
    {
        var options = request.Options ?? new AttributionOptions();
        var (nodes, weights) = GaussLegendre.OnUnitInterval(options.IntegrationSteps);
        var scores = new float[request.Targets.Count][];
        var values = new double[request.Targets.Count];
        int passes = 0;
        for (int k = 0; k < request.Targets.Count; k++)
        {
            using var scope = NewDisposeScope();
            var target = request.Targets[k];
            var input = MethodTensors.EmbedPrefix(model, request.Ids, target.Position)[0]; // [L, C]; baseline is zeros
            var averaged = zeros_like(input);
            for (int start = 0; start < nodes.Length; start += options.ChunkSize)
            {
                request.CancellationToken.ThrowIfCancellationRequested();
                using var chunkScope = NewDisposeScope();
                using var _ = enable_grad();
                int count = Math.Min(options.ChunkSize, nodes.Length - start);
                var alphas = tensor(nodes[start..(start + count)], input.dtype, model.Device).view(-1, 1, 1);
                var path = (alphas * input.unsqueeze(0)).detach().requires_grad_(true);             // [R, L, C]
                var positions = TorchScalars.Range(target.Position, model.Device).unsqueeze(0).expand(count, -1);
                using var output = model.Forward(new ForwardRequest(path, positions, LogitsFrom: target.Position - 1));
                var f = evaluator.Evaluate(output.Logits[.., 0], Enumerable.Repeat(k, count).ToArray()); // [R]
                f.sum().backward();
                var w = tensor(weights[start..(start + count)], input.dtype, model.Device).view(-1, 1, 1);
                averaged.PlusInPlace((path.grad! * w).sum(dim: 0)); // literal 0 would bind to sum(ScalarType)
                passes++;
            }
            scores[k] = ScorePostprocessing.Finish(ScorePostprocessing.Reduce(ScoreDimensions(averaged, input), options.Reduction), options, request.Ids.Count);
            values[k] = TargetValue(model, request, evaluator, k, input);
        }
        return new AttributionResult(Name, request.Targets, scores, values, passes + request.Targets.Count, passes);
    }

    private static double TargetValue(LanguageModel model, AttributionRequest request, TargetEvaluator evaluator, int k, Tensor input)
    {
        using var _ = no_grad();
        int position = request.Targets[k].Position;
        using var output = model.Forward(new ForwardRequest(input.unsqueeze(0), TorchScalars.Range(position, model.Device).unsqueeze(0), LogitsFrom: position - 1));
        return evaluator.Evaluate(output.Logits[.., 0], [k]).to(ScalarType.Float64).item<double>();
    }
}
