using Mirage.Core.Attribution;
using Mirage.Core.Tests.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Attribution;

/// <summary>
/// Layer gradient x activation on a random float64 checkpoint: input x gradient at the embeddings,
/// nothing but the predicting position at the last layer (and there nothing at all, since the
/// final RMS norm ignores the stream's scale), the same under both gradient strategies.
/// </summary>
public sealed class LayerGradientXActivationTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly AttributionEngine _engine = AttributionEngine.CreateDefault();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void AtTheEmbeddings_ItIsInputXGradient_AndAtTheLastLayer_OnlyThePredictingPositionCounts()
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config()));
        int[] ids = TinyCheckpoint.RandomIds(9, 23);
        AttributionTarget[] targets = [new(8, ids[8]), new(6, ids[6])];
        var sum = new AttributionOptions { Reduction = EmbeddingReduction.Sum };

        var embeddings = _engine.Attribute(model, "layer_gradient_x_activation", new AttributionRequest(ids, targets, Options: sum));
        var inputXGradient = _engine.Attribute(model, "input_x_gradient", new AttributionRequest(ids, targets, Options: sum));
        Assert.Equal(inputXGradient.Scores, embeddings.Scores);

        var last = _engine.Attribute(model, "layer_gradient_x_activation", new AttributionRequest(ids, targets, Options: sum with { Layer = -1 }));
        for (int k = 0; k < targets.Length; k++)
        {
            int predicting = targets[k].Position - 1;
            Assert.All(last.Scores[k].Where((_, j) => j != predicting), s => Assert.Equal(0f, s));
            // d f(a h) / d a at a = 1 is the summed gradient x activation: the norm makes f flat in a.
            Assert.True(Math.Abs(last.Scores[k][predicting]) < 1e-4, $"{last.Scores[k][predicting]}");
        }
        // Earlier sources reach the target through the next layer's attention: the gradient there is not flat
        // dimension by dimension (the default L2 reduction shows it; summed, the next norm flattens it too).
        var middle = _engine.Attribute(model, "layer_gradient_x_activation", new AttributionRequest(ids, targets, Options: new AttributionOptions { Layer = 0 }));
        Assert.Contains(middle.Scores[0][..7], s => s > 1e-3);
    }

    [Fact]
    public void BothGradientStrategies_Agree_AndAnUnknownLayerIsRefused()
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config()));
        int[] ids = TinyCheckpoint.RandomIds(9, 29);
        AttributionTarget[] targets = [new(8, ids[8]), new(4, ids[4]), new(6, ids[6])];
        var options = new AttributionOptions { Layer = 0 };

        var shared = _engine.Attribute(model, "layer_gradient_x_activation", new AttributionRequest(ids, targets, Options: options));
        var batched = _engine.Attribute(model, "layer_gradient_x_activation", new AttributionRequest(ids, targets, Options: options with { GradientStrategy = GradientStrategy.BatchedChunks, ChunkSize = 2 }));
        for (int k = 0; k < targets.Length; k++)
            for (int j = 0; j < ids.Length; j++)
                Assert.Equal(shared.Scores[k][j], batched.Scores[k][j], 1e-5);

        var error = Assert.Throws<MirageException>(() => _engine.Attribute(model, "layer_gradient_x_activation", new AttributionRequest(ids, targets, Options: new AttributionOptions { Layer = 5 })));
        Assert.Equal("Layer 5 is outside the model's 2 layers.", error.Message);
    }
}
