using Mirage.Core.Attribution;
using Mirage.Core.Attribution.Methods;
using Mirage.Core.Models;
using Mirage.Core.Tests.Models;
using Mirage.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Attribution;

/// <summary>
/// Layer integrated gradients on a random float64 checkpoint: integrated gradients at the
/// embeddings; at a layer, the path integral written out here through the public forward pass
/// (the layer's output for zero embeddings to its output for the input, the rest of the model run
/// from the next layer); only the predicting position after the last layer.
/// </summary>
public sealed class LayerIntegratedGradientsTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly AttributionEngine _engine = AttributionEngine.CreateDefault();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void AtALayer_ItIsThePathIntegralOverThatLayersOutput_AndAtTheEmbeddingsIntegratedGradients()
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config()));
        int[] ids = TinyCheckpoint.RandomIds(8, 41);
        AttributionTarget[] targets = [new(7, ids[7]), new(5, ids[5])];
        var sum = new AttributionOptions { Reduction = EmbeddingReduction.Sum, IntegrationSteps = 8 };

        var plain = _engine.Attribute(model, "integrated_gradients", new AttributionRequest(ids, targets, Options: sum));
        Assert.Equal(plain.Scores, _engine.Attribute(model, "layer_integrated_gradients", new AttributionRequest(ids, targets, Options: sum)).Scores);

        var layered = _engine.Attribute(model, "layer_integrated_gradients", new AttributionRequest(ids, targets, Options: sum with { Layer = 0 }));
        for (int k = 0; k < targets.Length; k++)
        {
            var expected = PathIntegral(model, ids, targets[k], layer: 0, steps: 8);
            for (int j = 0; j < expected.Length; j++)
                Assert.Equal(expected[j], layered.Scores[k][j], 1e-5);
            Assert.Equal(plain.TargetValues[k], layered.TargetValues[k], 12);
        }

        var last = _engine.Attribute(model, "layer_integrated_gradients", new AttributionRequest(ids, targets, Options: sum with { Layer = -1 }));
        for (int k = 0; k < targets.Length; k++)
            Assert.All(last.Scores[k].Where((_, j) => j != targets[k].Position - 1), s => Assert.Equal(0f, s));

        var error = Assert.Throws<MirageException>(() => _engine.Attribute(model, "layer_integrated_gradients", new AttributionRequest(ids, targets, Options: sum with { Layer = -3 })));
        Assert.Equal("Layer -3 is outside the model's 2 layers.", error.Message);
    }

    // (a - b) * sum_i w_i d log p(target) / d x at x = b + t_i (a - b), summed over the hidden dimension.
    private static double[] PathIntegral(LanguageModel model, int[] ids, AttributionTarget target, int layer, int steps)
    {
        using var scope = NewDisposeScope();
        int length = target.Position;
        var positions = TorchScalars.Range(length).unsqueeze(0);
        var embeddings = model.Embed(tensor(ids[..length].Select(i => (long)i).ToArray()).unsqueeze(0));
        Tensor Output(Tensor input)
        {
            using var _ = no_grad();
            using var pass = model.Forward(new ForwardRequest(input.alias(), positions, OutputHiddenStates: true));
            return pass.HiddenStates![layer + 1][0].clone();
        }
        var (a, b) = (Output(embeddings), Output(zeros_like(embeddings)));
        var (nodes, weights) = GaussLegendre.OnUnitInterval(steps);
        var averaged = zeros_like(a);
        for (int i = 0; i < steps; i++)
        {
            using var _ = enable_grad();
            var x = b.Plus(a.sub(b).Times(nodes[i])).detach().requires_grad_(true);
            using var pass = model.Forward(new ForwardRequest(x.unsqueeze(0), positions, StartLayer: layer + 1));
            var f = pass.Logits[0, length - 1].log_softmax(0)[target.TokenId];
            averaged = averaged.Plus(torch.autograd.grad([f], [x])[0].Times(weights[i]));
        }
        return a.sub(b).mul(averaged).sum(-1).data<double>().ToArray();
    }
}
