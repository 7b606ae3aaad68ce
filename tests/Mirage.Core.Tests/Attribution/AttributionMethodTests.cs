using Mirage.Core.Attribution;
using Mirage.Core.Attribution.StepFunctions;
using Mirage.Core.Models;
using Mirage.Core.Tests.Models;
using Mirage.Tests;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Attribution;

/// <summary>Gradient oracles and method properties on a tiny random float64 model.</summary>
public sealed class AttributionMethodTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly LanguageModel _model;
    private readonly int[] _ids;
    private readonly AttributionEngine _engine = AttributionEngine.CreateDefault();

    public AttributionMethodTests()
    {
        _model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config()));
        _ids = TinyCheckpoint.RandomIds(9, 31);
    }

    public void Dispose()
    {
        _model.Dispose();
        _temp.Dispose();
    }

    private AttributionTarget[] Targets(bool contrast) =>
        [new(4, _ids[4], contrast ? (_ids[4] + 1) % 259 : null), new(8, _ids[8], contrast ? 7 : null), new(6, _ids[6], contrast ? _ids[6] : null)];

    // f(E) for one target, straight from the forward pass and the step function.
    private double TargetValue(Tensor embeddings, AttributionTarget target, string stepFunction) => TargetValue(_model, embeddings, target, stepFunction);

    private double TargetValue(LanguageModel model, Tensor embeddings, AttributionTarget target, string stepFunction)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var output = model.Forward(new ForwardRequest(embeddings.unsqueeze(0), TorchScalars.Range(embeddings.shape[0]).unsqueeze(0)));
        var logits = output.Logits[0, target.Position - 1].unsqueeze(0);
        var args = new StepFunctionArgs(logits, tensor(new long[] { target.TokenId }), tensor(new long[] { target.ContrastTokenId ?? target.TokenId }));
        return _engine.StepFunctions.Get(stepFunction)(args).item<double>();
    }

    private double[,] FiniteDifferenceGradient(AttributionTarget target, string stepFunction, out Tensor embeddings)
    {
        embeddings = _model.Embed(tensor(_ids[..target.Position].Select(i => (long)i).ToArray())).detach();
        var gradient = new double[embeddings.shape[0], embeddings.shape[1]];
        const double h = 1e-5;
        for (int j = 0; j < embeddings.shape[0]; j++)
        for (int c = 0; c < embeddings.shape[1]; c++)
        {
            using var plus = embeddings.clone();
            using var minus = embeddings.clone();
            plus[j, c] = plus[j, c].Plus(h);
            minus[j, c] = minus[j, c].Plus(-h);
            gradient[j, c] = (TargetValue(plus, target, stepFunction) - TargetValue(minus, target, stepFunction)) / (2 * h);
        }
        return gradient;
    }

    [Theory]
    [InlineData("log_probability", GradientStrategy.SharedGraph)]
    [InlineData("contrast_logprob_diff", GradientStrategy.SharedGraph)]
    [InlineData("contrast_logprob_diff", GradientStrategy.BatchedChunks)]
    [InlineData("probability", GradientStrategy.BatchedChunks)]
    public void SaliencyAndInputXGradient_MatchCentralFiniteDifferences(string stepFunction, GradientStrategy strategy)
    {
        var targets = Targets(contrast: true);
        var options = new AttributionOptions { GradientStrategy = strategy, ChunkSize = 2 };
        var saliency = _engine.Attribute(_model, "saliency", new AttributionRequest(_ids, targets, stepFunction, options));
        var inputXGradient = _engine.Attribute(_model, "input_x_gradient", new AttributionRequest(_ids, targets, stepFunction, options with { Reduction = EmbeddingReduction.Sum }));
        for (int k = 0; k < targets.Length; k++)
        {
            var expected = FiniteDifferenceGradient(targets[k], stepFunction, out var embeddings);
            var e = embeddings.data<double>().ToArray();
            int width = expected.GetLength(1);
            for (int j = 0; j < _ids.Length; j++)
            {
                double norm = 0, dot = 0;
                if (j < targets[k].Position)
                    for (int c = 0; c < width; c++)
                    {
                        norm += expected[j, c] * expected[j, c];
                        dot += expected[j, c] * e[j * width + c];
                    }
                Assert.Equal(Math.Sqrt(norm), saliency.Scores[k][j], 1e-5);
                Assert.Equal(dot, inputXGradient.Scores[k][j], 1e-5);
            }
            Assert.Equal(TargetValue(embeddings, targets[k], stepFunction), saliency.TargetValues[k], 1e-9);
        }
        Assert.Equal(strategy == GradientStrategy.SharedGraph ? 1 : 2, saliency.ForwardPasses);
    }

    [Fact]
    public void BatchedChunks_EqualSharedGraph()
    {
        var targets = Targets(contrast: true);
        var request = new AttributionRequest(_ids, targets, "contrast_logprob_diff");
        var shared = _engine.Attribute(_model, "saliency", request);
        var batched = _engine.Attribute(_model, "saliency", request with { Options = new AttributionOptions { GradientStrategy = GradientStrategy.BatchedChunks, ChunkSize = 2 } });
        for (int k = 0; k < targets.Length; k++)
            Assert.Equal(shared.Scores[k], batched.Scores[k], (a, b) => Math.Abs(a - b) < 1e-6);
        Assert.Equal((1, 3), (shared.ForwardPasses, shared.BackwardPasses));
        Assert.Equal((2, 2), (batched.ForwardPasses, batched.BackwardPasses));
    }

    [Fact]
    public void IntegratedGradients_AreComplete()
    {
        // RMSNorm is scale-invariant, so from a zero baseline the integrand spikes within ~sqrt(eps)
        // of it; a larger epsilon keeps the path smooth enough for 24 quadrature points.
        using var temp = new TempDirectory();
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(temp, TinyCheckpoint.Config() with { RmsNormEps = 0.5 }));
        var targets = Targets(contrast: false);
        var result = _engine.Attribute(model, "integrated_gradients", new AttributionRequest(_ids, targets, "log_probability",
            new AttributionOptions { Reduction = EmbeddingReduction.Sum, IntegrationSteps = 24, ChunkSize = 8 }));
        for (int k = 0; k < targets.Length; k++)
        {
            using var embeddings = model.Embed(tensor(_ids[..targets[k].Position].Select(i => (long)i).ToArray())).detach();
            using var baseline = zeros_like(embeddings);
            double expected = TargetValue(model, embeddings, targets[k], "log_probability") - TargetValue(model, baseline, targets[k], "log_probability");
            Assert.Equal(expected, result.Scores[k].Sum(x => (double)x), 1e-6);
            Assert.Equal(TargetValue(model, embeddings, targets[k], "log_probability"), result.TargetValues[k], 1e-9);
            Assert.All(result.Scores[k][targets[k].Position..], s => Assert.Equal(0f, s));
        }
        Assert.Equal(9, result.BackwardPasses); // 3 targets x 3 chunks of 8 path points
    }

    [Fact]
    public void Occlusion_EqualsLeaveOneOut_AndIsZeroWhereTheTargetCannotLook()
    {
        var targets = Targets(contrast: false);
        var result = _engine.Attribute(_model, "occlusion", new AttributionRequest(_ids, targets, "log_probability", new AttributionOptions { ChunkSize = 3 }));
        for (int k = 0; k < targets.Length; k++)
        {
            using var embeddings = _model.Embed(tensor(_ids[..8].Select(i => (long)i).ToArray())).detach();
            double reference = TargetValue(embeddings[..targets[k].Position], targets[k], "log_probability");
            for (int j = 0; j < _ids.Length; j++)
            {
                if (j >= targets[k].Position)
                {
                    Assert.Equal(0f, result.Scores[k][j]); // occluding a token the target cannot see changes nothing
                    continue;
                }
                using var occluded = embeddings[..targets[k].Position].clone();
                occluded[j].zero_();
                Assert.Equal(reference - TargetValue(occluded, targets[k], "log_probability"), result.Scores[k][j], 1e-5);
            }
        }
    }

    [Fact]
    public void Occlusion_OfSpans_SumsToTheSpanEffect()
    {
        var target = new AttributionTarget(8, _ids[8]);
        var spans = new List<(int, int)> { (0, 3), (3, 6), (6, 8) };
        var result = _engine.Attribute(_model, "occlusion", new AttributionRequest(_ids, [target], "log_probability", new AttributionOptions { OcclusionSpans = spans }));
        using var embeddings = _model.Embed(tensor(_ids[..8].Select(i => (long)i).ToArray())).detach();
        double reference = TargetValue(embeddings, target, "log_probability");
        foreach (var (start, end) in spans)
        {
            using var occluded = embeddings.clone();
            occluded[start..end].zero_();
            Assert.Equal(reference - TargetValue(occluded, target, "log_probability"), result.Scores[0][start..end].Sum(x => (double)x), 1e-5);
        }
        Assert.Equal(1 + 1, result.ForwardPasses); // reference + one chunk of three spans
    }

    [Fact]
    public void Attention_RowsAreDistributionsOverVisiblePositions()
    {
        var targets = Targets(contrast: false);
        foreach (var options in new[] { new AttributionOptions(), new AttributionOptions { AttentionLayer = -1, AttentionHead = 2 } })
        {
            var result = _engine.Attribute(_model, "attention", new AttributionRequest(_ids, targets, "log_probability", options));
            for (int k = 0; k < targets.Length; k++)
            {
                Assert.Equal(1.0, result.Scores[k][..targets[k].Position].Sum(x => (double)x), 1e-6);
                Assert.All(result.Scores[k][targets[k].Position..], s => Assert.Equal(0f, s));
            }
        }
    }

    [Fact]
    public void Normalization_L1AndMaxRescale()
    {
        var targets = Targets(contrast: false);
        var l1 = _engine.Attribute(_model, "saliency", new AttributionRequest(_ids, targets, "log_probability", new AttributionOptions { NormalizeL1 = true }));
        var max = _engine.Attribute(_model, "saliency", new AttributionRequest(_ids, targets, "log_probability", new AttributionOptions { RescaleByMax = true }));
        Assert.All(l1.Scores, row => Assert.Equal(1.0, row.Sum(x => Math.Abs(x)), 1e-5));
        Assert.All(max.Scores, row => Assert.Equal(1f, row.Max(x => Math.Abs(x)), 1e-6));
    }

    [Fact]
    public void Engine_RejectsBadRequestsWithClearMessages()
    {
        Assert.Contains("choose one of saliency", Assert.Throws<MirageException>(() => _engine.Attribute(_model, "lime", new AttributionRequest(_ids, Targets(false)))).Message);
        Assert.Contains("Unknown step function 'bleu'", Assert.Throws<MirageException>(() => _engine.Attribute(_model, "saliency", new AttributionRequest(_ids, Targets(false), "bleu"))).Message);
        Assert.Contains("names token", Assert.Throws<MirageException>(() => _engine.Attribute(_model, "saliency", new AttributionRequest(_ids, [new AttributionTarget(3, _ids[3] + 1)]))).Message);
        Assert.Contains("outside 1..8", Assert.Throws<MirageException>(() => _engine.Attribute(_model, "saliency", new AttributionRequest(_ids, [new AttributionTarget(0, _ids[0])]))).Message);
    }

    [Fact]
    public void Registry_AcceptsANewMethodWithoutTouchingTheOthers()
    {
        var registry = AttributionMethodRegistry.CreateDefault();
        registry.Register(new UniformMethod());
        var engine = new AttributionEngine(registry, StepFunctionRegistry.CreateDefault());
        var result = engine.Attribute(_model, "uniform", new AttributionRequest(_ids, Targets(false)));
        Assert.Equal(1f / 4, result.Scores[0][0]);
        Assert.Throws<MirageException>(() => registry.Register(new UniformMethod()));
    }

    private sealed class UniformMethod : IAttributionMethod
    {
        public string Name => "uniform";

        public AttributionResult Attribute(LanguageModel model, AttributionRequest request, TargetEvaluator evaluator) =>
            new(Name, request.Targets,
                request.Targets.Select(t => Enumerable.Range(0, request.Ids.Count).Select(j => j < t.Position ? 1f / t.Position : 0f).ToArray()).ToList(),
                request.Targets.Select(_ => 0.0).ToList(), 0, 0);
    }
}
