using Mirage.Core.Models;
using Mirage.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Models;

/// <summary>The real pretrained stories260K Llama against reference token ids, logits and greedy text.</summary>
public sealed class Stories260KTests
{
    private static LanguageModel LoadModel(ScalarType dtype = ScalarType.Float32) =>
        LanguageModel.Load(SharedAssets.Stories260KHf, new ComputeOptions { DType = dtype });

    [Theory]
    [MemberData(nameof(Stories260KPrompt.Indices), MemberType = typeof(Stories260KPrompt))]
    public void Tokenizer_EncodesPrompt_ToReferenceIds(int index)
    {
        var reference = Stories260KPrompt.Load()[index];
        using var model = LoadModel();
        Assert.Equal(reference.Ids, model.Tokenizer.EncodeIds(reference.Prompt));
    }

    [Theory]
    [MemberData(nameof(Stories260KPrompt.Indices), MemberType = typeof(Stories260KPrompt))]
    public void Forward_Float32_MatchesReferenceLogitsWithin1e4(int index)
    {
        var reference = Stories260KPrompt.Load()[index];
        using var model = LoadModel();
        var logits = LastLogits(model, reference.Ids);
        Assert.Equal(reference.LastLogits.Length, logits.Length);
        var worst = reference.LastLogits.Zip(logits, (r, x) => Math.Abs(r - x)).Max();
        Assert.True(worst < 1e-4, $"largest logit difference {worst}");
    }

    [Theory]
    [MemberData(nameof(Stories260KPrompt.Indices), MemberType = typeof(Stories260KPrompt))]
    public void Forward_Float64_MatchesReferenceLogitsToRoundingError(int index)
    {
        // The weights are float32 values, so a float64 pass reproduces the float64 reference exactly up to summation order.
        var reference = Stories260KPrompt.Load()[index];
        using var model = LoadModel(ScalarType.Float64);
        var worst = reference.LastLogits.Zip(LastLogits(model, reference.Ids), (r, x) => Math.Abs(r - x)).Max();
        Assert.True(worst < 1e-10, $"largest logit difference {worst}");
    }

    [Theory]
    [MemberData(nameof(Stories260KPrompt.Indices), MemberType = typeof(Stories260KPrompt))]
    public void Generate_Greedy_ReproducesReferenceContinuation(int index)
    {
        var reference = Stories260KPrompt.Load()[index];
        using var model = LoadModel();
        var result = model.Generate(reference.Prompt, new GenerationOptions { MaxTokens = reference.GreedyIds.Length });
        Assert.Equal(reference.GreedyIds, result.TokenIds);
        Assert.Equal(reference.GreedyText, result.Text);
        Assert.Equal(FinishReason.Length, result.FinishReason);
        Assert.Equal(reference.Ids.Length, result.PromptTokenCount);
    }

    [Fact]
    public void Generate_BFloat16_StaysCloseToFloat32()
    {
        var reference = Stories260KPrompt.Load()[0];
        using var model = LoadModel(ScalarType.BFloat16);
        var logits = LastLogits(model, reference.Ids);
        // bfloat16 keeps 8 bits of mantissa: the logits move, but the greedy choice and scale hold.
        Assert.Equal(Array.IndexOf(reference.LastLogits, reference.LastLogits.Max()), Array.IndexOf(logits, logits.Max()));
        Assert.True(reference.LastLogits.Zip(logits, (r, x) => Math.Abs(r - x)).Max() < 1.0);
    }

    [Fact]
    public void ScoreContinuation_EqualsLogSoftmaxOfStepwiseLogits_InFloat64()
    {
        var reference = Stories260KPrompt.Load()[0];
        using var model = LoadModel(ScalarType.Float64);
        var scores = model.ScoreContinuation(reference.Ids, reference.GreedyIds[..5]);
        var prefix = reference.Ids.ToList();
        for (int i = 0; i < 5; i++)
        {
            var logits = LastLogits(model, prefix.ToArray());
            double logSumExp = Math.Log(logits.Sum(l => Math.Exp(l - logits.Max()))) + logits.Max();
            // float64 end to end: the log-probabilities are as precise as the logits (float32 values would be 1e-6 off).
            Assert.Equal(logits[reference.GreedyIds[i]] - logSumExp, scores[i], 1e-10);
            prefix.Add(reference.GreedyIds[i]);
        }
    }

    [Fact]
    public void Generate_WithStopString_CutsTextBeforeIt()
    {
        using var model = LoadModel();
        var result = model.Generate("Once upon a time", new GenerationOptions { MaxTokens = 24, StopStrings = ["Lily"] });
        Assert.Equal(", there was a little girl named ", result.Text);
        Assert.Equal(FinishReason.StopString, result.FinishReason);
    }

    [Fact]
    public void GenerateTokens_StreamedDeltas_ConcatenateToTheFullText()
    {
        using var model = LoadModel();
        var prompt = model.Tokenizer.EncodeIds("Once upon a time");
        var options = new GenerationOptions { MaxTokens = 24, StopStrings = ["park"] };
        var streamed = string.Concat(model.GenerateTokens(prompt, options).Select(t => t.TextDelta));
        Assert.Equal(model.Generate(prompt, options).Text, streamed);
        Assert.DoesNotContain("park", streamed);
    }

    [Fact]
    public void Generate_SampledWithSeed_IsRepeatableAndDiffersAcrossSeeds()
    {
        using var model = LoadModel();
        GenerationResult Run(long seed) => model.Generate("Lily and Ben", new GenerationOptions { MaxTokens = 20, Temperature = 1.0, Seed = seed });
        Assert.Equal(Run(7).TokenIds, Run(7).TokenIds);
        Assert.NotEqual(Run(7).TokenIds, Run(8).TokenIds);
    }

    [Fact]
    public void Generate_TinyTopP_EqualsGreedy()
    {
        using var model = LoadModel();
        var greedy = model.Generate("The little dog", new GenerationOptions { MaxTokens = 12 });
        var nucleus = model.Generate("The little dog", new GenerationOptions { MaxTokens = 12, Temperature = 1.0, TopP = 1e-6, Seed = 3 });
        Assert.Equal(greedy.TokenIds, nucleus.TokenIds);
    }

    [Fact]
    public void Generate_PromptFillingTheContext_FailsSayingByHowMuch()
    {
        using var model = LoadModel();
        var prompt = Enumerable.Repeat(model.Tokenizer.EncodeIds("time", addSpecialTokens: false)[0], 520).ToArray();
        var error = Assert.Throws<ContextLengthExceededException>(() => model.Generate(prompt));
        Assert.Contains("520 tokens", error.Message);
        Assert.Contains("512-token context", error.Message);
        Assert.Contains("at least 9", error.Message);
    }

    [Fact]
    public void ScoreContinuation_LongerThanContext_FailsSayingByHowMuch()
    {
        using var model = LoadModel();
        var error = Assert.Throws<MirageException>(() => model.ScoreContinuation(new int[500], new int[20]));
        Assert.Contains("8 more than the model's 512-token context", error.Message);
    }

    [Fact]
    public void PublicEntryPoints_ReleaseEveryTensorTheyCreate()
    {
        using var model = LoadModel();
        var prompt = model.Tokenizer.EncodeIds("Once upon a time");
        model.Generate(prompt, new GenerationOptions { MaxTokens = 4 }); // warm-up: lazily created natives
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        model.Generate(prompt, new GenerationOptions { MaxTokens = 8, Temperature = 0.8, TopP = 0.9, Seed = 1 });
        model.ScoreContinuation(prompt, [432, 383]);
        model.ScoreContinuations([(prompt, [432]), (prompt[..3], [383, 286])]);
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    internal static double[] LastLogits(LanguageModel model, int[] ids)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        using var output = model.Forward(new ForwardRequest(model.Embed(input), TorchScalars.Range(ids.Length).unsqueeze(0)));
        return output.Logits[0, -1].to(ScalarType.Float64).data<double>().ToArray();
    }
}
