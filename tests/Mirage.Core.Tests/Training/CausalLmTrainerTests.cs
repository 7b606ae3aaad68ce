using Mirage.Core.Models;
using Mirage.Core.Tests.Models;
using Mirage.Core.Tokenization;
using Mirage.Core.Training;
using Mirage.Tests;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Training;

public sealed class CausalLmTrainerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly TrainingExample[] Batch = Enumerable.Range(0, 4)
        .Select(b => new TrainingExample(
            Enumerable.Range(0, 10).Select(i => (b * 37 + i * 11) % 250).ToArray(),
            Enumerable.Range(0, 10).Select(i => (b * 13 + i * 7 + 3) % 250).ToArray()))
        .ToArray();

    private static List<double> Train(CausalLmTrainer trainer, int steps) =>
        Enumerable.Range(0, steps).Select(_ => trainer.TrainStep(Batch).Loss).ToList();

    private static TrainerOptions Options(ScalarType dtype) =>
        new() { LearningRate = 1e-2, WarmupSteps = 1, TotalSteps = 10, ComputeDtype = dtype };

    [Fact]
    public void MixedPrecision_FollowsFloat32Training_AndSavesTheFloat32MasterWeights()
    {
        using var full = CausalLmTrainer.Create(TinyCheckpoint.Config(), Options(ScalarType.Float32));
        using var mixed = CausalLmTrainer.Create(TinyCheckpoint.Config(), Options(ScalarType.BFloat16));
        var fullLosses = Train(full, 10);
        var mixedLosses = Train(mixed, 10);

        Assert.Equal(fullLosses[0], mixedLosses[0], 0.05); // the same initial weights
        Assert.True(mixedLosses[^1] < 0.6 * mixedLosses[0], $"bfloat16 loss went from {mixedLosses[0]} to {mixedLosses[^1]}");
        Assert.True(Math.Abs(mixedLosses[^1] - fullLosses[^1]) < 0.15 * fullLosses[^1], $"bfloat16 ended at {mixedLosses[^1]}, float32 at {fullLosses[^1]}");

        // The checkpoint holds the float32 masters: updates finer than bfloat16's 8-bit mantissa survive.
        var directory = Path.Combine(_temp.Path, "mixed");
        mixed.Save(directory);
        TokenizerJsonWriter.WriteByteLevel(directory, [], ["<s>", "</s>"], "<s>", "</s>");
        using (var model = LanguageModel.Load(directory, new ComputeOptions { DType = ScalarType.Float32 }))
        using (var scope = NewDisposeScope())
        {
            var embeddings = model.Embed(TorchScalars.Range(TinyCheckpoint.Config().VocabSize).unsqueeze(0));
            var rounding = (embeddings - embeddings.to(ScalarType.BFloat16).to(ScalarType.Float32)).abs().max().item<float>();
            Assert.True(rounding > 0, "saved weights are all bfloat16 values: the masters were not saved");
        }
        using var resumed = CausalLmTrainer.Resume(directory, Options(ScalarType.BFloat16));
        Assert.Equal(10, resumed.Step);
        Assert.True(resumed.TrainStep(Batch).Loss < mixedLosses[0]);
    }

    [Fact]
    public void Loss_IsTheMeanTargetCrossEntropy_WhateverTheBatchIsPaddedTo()
    {
        // The 20-token examples are trained as a 32-token padded batch: the padding must add nothing.
        using var trainer = CausalLmTrainer.Create(TinyCheckpoint.Config(), Options(ScalarType.Float32));
        var directory = Path.Combine(_temp.Path, "initial");
        trainer.Save(directory);
        TokenizerJsonWriter.WriteByteLevel(directory, [], ["<s>", "</s>"], "<s>", "</s>");
        double expected;
        using (var model = LanguageModel.Load(directory, new ComputeOptions { DType = ScalarType.Float32 }))
            expected = -Batch.SelectMany(e => model.ScoreContinuation(e.Prompt, e.Target)).Average();

        Assert.Equal(expected, trainer.TrainStep(Batch).Loss, 1e-4);
    }

    [Fact]
    public void UnsupportedComputeDtype_IsAClearError()
    {
        var error = Assert.Throws<MirageException>(() => CausalLmTrainer.Create(TinyCheckpoint.Config(), new TrainerOptions { ComputeDtype = ScalarType.Float16 }));
        Assert.Contains("bfloat16", error.Message);
    }
}
