using Mirage.Core.Attribution;
using Mirage.Core.Citations;
using Mirage.Core.Tests.Flow;
using Mirage.Core.Tests.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Attribution;

/// <summary>
/// Value zeroing on random float64 checkpoints: the scores a plain implementation gets by recomputing
/// the layer without each source's value, nothing for a source no head attends to, and usable as a
/// citation method.
/// </summary>
public sealed class ValueZeroingTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly AttributionEngine _engine = AttributionEngine.CreateDefault();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(null)]
    [InlineData(0)]
    [InlineData(-2)]
    public void TheScores_AreThePlainZeroedLayers(int? layer)
    {
        var config = TinyCheckpoint.Config();
        var directory = TinyCheckpoint.Write(_temp, config);
        using var model = TinyCheckpoint.Load(directory);
        int[] ids = TinyCheckpoint.RandomIds(9, 17);
        AttributionTarget[] targets = [new(8, ids[8]), new(5, ids[5])];

        var result = _engine.Attribute(model, "value_zeroing", new AttributionRequest(ids, targets, Options: new AttributionOptions { Layer = layer }));

        int read = layer is int l ? (l < 0 ? config.NumLayers + l : l) : config.NumLayers - 1;
        for (int k = 0; k < targets.Length; k++)
        {
            var expected = PlainRoutes.ValueZeroing(directory, config, ids, read, targets[k].Position - 1);
            Assert.Equal(ids.Length, result.Scores[k].Length);
            for (int j = 0; j < ids.Length; j++)
                Assert.Equal(expected[j], result.Scores[k][j], 1e-6);
            Assert.Equal(1, result.Scores[k].Sum(), 1e-5);
        }
        Assert.Equal(1, result.ForwardPasses);
        Assert.Equal(0, result.BackwardPasses);
    }

    [Fact]
    public void ASourceNoHeadAttendsTo_ChangesNothing()
    {
        // A sliding window of 3: the target at row 8 attends to rows 6-8 only, in every layer.
        var config = TinyCheckpoint.FamilyConfig("MistralForCausalLM", ", \"sliding_window\": 3");
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, config));
        int[] ids = TinyCheckpoint.RandomIds(10, 4);

        foreach (var layer in new int?[] { 0, null })
        {
            var scores = _engine.Attribute(model, "value_zeroing", new AttributionRequest(ids, [new(9, ids[9])], Options: new AttributionOptions { Layer = layer })).Scores[0];
            Assert.All(scores[..6], s => Assert.Equal(0f, s));
            Assert.All(scores[6..9], s => Assert.True(s > 0));
            Assert.Equal(0f, scores[9]);
        }
    }

    [Fact]
    public void WithSandwichNorms_TheScoresAreADistribution_AndAnUnknownLayerIsRefused()
    {
        var config = TinyCheckpoint.FamilyConfig("Gemma2ForCausalLM", ", \"attn_logit_softcapping\": 5.0, \"final_logit_softcapping\": 3.0, \"query_pre_attn_scalar\": 8");
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, config));
        int[] ids = TinyCheckpoint.RandomIds(8, 9);

        var scores = _engine.Attribute(model, "value_zeroing", new AttributionRequest(ids, [new(7, ids[7])])).Scores[0];
        Assert.Equal(1, scores.Sum(), 1e-5);
        Assert.All(scores, s => Assert.True(s >= 0));

        var error = Assert.Throws<MirageException>(() => _engine.Attribute(model, "value_zeroing", new AttributionRequest(ids, [new(7, ids[7])], Options: new AttributionOptions { Layer = 2 })));
        Assert.Equal("Layer 2 is outside the model's 2 layers.", error.Message);
    }

    [Fact]
    public async Task AsACitationMethod_ItCitesByContextCues()
    {
        using var model = Mirage.Core.Models.LanguageModel.Load(SharedAssets.EmbeddedReader, new Mirage.Core.Models.ComputeOptions { DType = TorchSharp.torch.ScalarType.Float32, Engine = Mirage.Core.Models.ModelEngine.Torch });
        Passage[] passages =
        [
            new("1", "Brensein Rourti", "Brensein Rourti was born in Horvairton. Brensein Rourti works for Fervir Partners."),
            new("2", "Lousdrur Rourti", "Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grouscelford."),
        ];
        var options = new CitationOptions().WithMethod("value_zeroing");
        var result = await new MirageCitationEngine(model).CiteAsync(new CitationRequest("Where was Lousdrur Rourti born?", passages, "Lousdrur Rourti was born in Grouscelford.", options));

        Assert.Equal("value_zeroing", result.Options.MethodName);
        Assert.Equal(0, result.Cost.BackwardPasses);
        Assert.NotEmpty(result.Cues);
        // Each selected token's scores over the prompt: part of a distribution over the whole input.
        Assert.All(result.Cues, cue => Assert.True(cue.Scores.All(s => s >= 0) && cue.Scores.Sum() <= 1.0001));
    }
}
