using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution.Methods;

/// <summary>
/// Integrated gradients (Sundararajan et al., 2017) from an all-zero embedding baseline:
/// (e - b) * integral over a in [0, 1] of d f / d e at b + a (e - b), reduced over the embedding
/// dimension. The integral uses Gauss-Legendre quadrature with
/// <see cref="AttributionOptions.IntegrationSteps"/> points (Captum's default rule), exact for
/// polynomials of degree 2n - 1; with <see cref="EmbeddingReduction.Sum"/> the scores add up to
/// f(e) - f(b) (completeness). The layer variant (<see cref="LayerIntegratedGradientsMethod"/>)
/// integrates over a decoder layer's output instead, from its value for the zero baseline, running
/// the rest of the model from that layer.
/// </summary>
public class IntegratedGradientsMethod : GradientAttributionMethod
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
            var embeddings = MethodTensors.EmbedPrefix(model, request.Ids, target.Position);  // [1, L, C]; the baseline is zeros
            var layer = ActivationLayer(model, options);
            var (input, baseline) = layer is int l
                ? (Activation(model, embeddings, l), Activation(model, zeros_like(embeddings), l))
                : (embeddings[0], zeros_like(embeddings[0]));                                // [L, C] each
            var delta = input.sub(baseline);
            var averaged = zeros_like(input);
            for (int start = 0; start < nodes.Length; start += options.ChunkSize)
            {
                request.CancellationToken.ThrowIfCancellationRequested();
                using var chunkScope = NewDisposeScope();
                using var _ = enable_grad();
                int count = Math.Min(options.ChunkSize, nodes.Length - start);
                var alphas = tensor(nodes[start..(start + count)], input.dtype, model.Device).view(-1, 1, 1);
                var path = baseline.unsqueeze(0).Plus(alphas * delta.unsqueeze(0)).detach().requires_grad_(true); // [R, L, C]
                var positions = TorchScalars.Range(target.Position, model.Device).unsqueeze(0).expand(count, -1);
                using var output = model.Forward(new ForwardRequest(path, positions, LogitsFrom: target.Position - 1, StartLayer: layer + 1 ?? 0));
                var f = evaluator.Evaluate(output.Logits[.., 0], Enumerable.Repeat(k, count).ToArray()); // [R]
                f.sum().backward();
                var w = tensor(weights[start..(start + count)], input.dtype, model.Device).view(-1, 1, 1);
                averaged.PlusInPlace((path.grad! * w).sum(dim: 0)); // literal 0 would bind to sum(ScalarType)
                passes++;
            }
            scores[k] = ScorePostprocessing.Finish(ScorePostprocessing.Reduce(ScoreDimensions(averaged, delta), options.Reduction), options, request.Ids.Count);
            values[k] = TargetValue(model, request, evaluator, k, embeddings[0]);
        }
        return new AttributionResult(Name, request.Targets, scores, values, passes + request.Targets.Count, passes);
    }

    // The residual stream after decoder layer `layer` for these embeddings, [L, C].
    private static Tensor Activation(LanguageModel model, Tensor embeddings, int layer)
    {
        using var _ = no_grad();
        // An alias: the output's hidden states hold the input itself, and disposing them must not free the caller's.
        using var output = model.Forward(new ForwardRequest(embeddings.alias(), TorchScalars.Range(embeddings.shape[1], model.Device).unsqueeze(0), LogitsFrom: (int)embeddings.shape[1] - 1, OutputHiddenStates: true));
        return output.HiddenStates![layer + 1][0].clone();
    }

    private static double TargetValue(LanguageModel model, AttributionRequest request, TargetEvaluator evaluator, int k, Tensor input)
    {
        using var _ = no_grad();
        int position = request.Targets[k].Position;
        using var output = model.Forward(new ForwardRequest(input.unsqueeze(0), TorchScalars.Range(position, model.Device).unsqueeze(0), LogitsFrom: position - 1));
        return evaluator.Evaluate(output.Logits[.., 0], [k]).to(ScalarType.Float64).item<double>();
    }
}
