using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Models.Gguf;
using Mirage.Core.Tests.Citations;
using Mirage.Core.Tests.Models.Gguf;
using Mirage.Tests;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Models;

/// <summary>
/// The llama.cpp engine against the TorchSharp one on the same F32 GGUF file (the embedded reader,
/// converted): the same logits, generations, ablation drops and citations, and the choices
/// <see cref="ModelEngine.Auto"/> makes.
/// </summary>
public sealed class LlamaCppEngineTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private string ReaderGguf(string name = "reader-f32.gguf")
    {
        var path = _temp.File(name);
        GgufConverter.FromHuggingFace(SharedAssets.EmbeddedReader, path);
        return path;
    }

    // float32 on both engines: llama.cpp then keeps its KV cache and attention in float32 too.
    private static LanguageModel Load(string model, ModelEngine engine) =>
        LanguageModel.Load(model, new ComputeOptions { Engine = engine, DType = ScalarType.Float32 });

    [Fact]
    public void Auto_RunsAGgufFileOnLlamaCpp_AndAFolderAGradientMethodOrATorchDTypeOnTorch()
    {
        var gguf = ReaderGguf();
        using (var onLlama = LanguageModel.Load(gguf))
        using (var onTorch = Load(gguf, ModelEngine.Torch))
        {
            Assert.Equal(ModelEngine.LlamaCpp, onLlama.Engine);
            Assert.Null(onLlama.EngineNote);
            Assert.Equal(ScalarType.Float32, onLlama.DType);
            Assert.Matches(@"^GGUF v3 \(F32 x\d+\)$", onLlama.SourceFormat);
            Assert.EndsWith(", dequantized", onTorch.SourceFormat);
            Assert.Equal(onTorch.ParameterCount, onLlama.ParameterCount);
        }
        using (var forGradients = LanguageModel.Load(gguf, new ComputeOptions { NeedsGradients = true }))
            Assert.Equal(ModelEngine.Torch, forGradients.Engine);
        using (var inFloat64 = LanguageModel.Load(gguf, new ComputeOptions { DType = ScalarType.Float64 }))
            Assert.Equal(ModelEngine.Torch, inFloat64.Engine);
        using (var folder = LanguageModel.Load(SharedAssets.EmbeddedReader))
            Assert.Equal(ModelEngine.Torch, folder.Engine);

        Assert.Contains("reads GGUF files", Assert.Throws<MirageException>(() => LanguageModel.Load(SharedAssets.EmbeddedReader, new ComputeOptions { Engine = ModelEngine.LlamaCpp })).Message);
        Assert.Contains("needs gradients", Assert.Throws<MirageException>(() => LanguageModel.Load(gguf, new ComputeOptions { Engine = ModelEngine.LlamaCpp, NeedsGradients = true })).Message);
        Assert.Contains("--dtype bfloat16 needs --engine torch", Assert.Throws<MirageException>(() => LanguageModel.Load(gguf, new ComputeOptions { Engine = ModelEngine.LlamaCpp, DType = ScalarType.BFloat16 })).Message);
    }

    [Fact]
    public void ARewoundSequence_ContinuesAsAFreshOneDecodesTheSameTokens()
    {
        using var model = Load(ReaderGguf(), ModelEngine.LlamaCpp);
        var first = model.Tokenizer.EncodeIds("Document [1](Title: Cimgun Labs): Lousdrur Rourti works for Cimgun Labs.");
        var other = model.Tokenizer.EncodeIds(" Caszais Rourti was born in Grekbrothholm.", addSpecialTokens: false);
        int shared = 9;

        using var cached = model.NewSequence(first.Length + other.Length);
        using (var all = cached.Append(first, logitsFrom: 0))
            Assert.Equal([first.Length, (long)model.Config.VocabSize], all!.shape);
        cached.Rewind(shared);
        Assert.Equal(shared, cached.Length);
        using var continued = cached.Append(other, logitsFrom: 0)!;

        using var fresh = model.NewSequence(shared + other.Length);
        Assert.Null(fresh.Append(first.Take(shared).ToList(), logitsFrom: null));
        using var expected = fresh.Append(other, logitsFrom: 0)!;
        using var whole = model.NewSequence(shared + other.Length);
        using var wholeLogits = whole.Append([.. first.Take(shared), .. other], logitsFrom: shared)!;

        Assert.True(continued.allclose(expected, rtol: 0, atol: 1e-5), $"max difference {(continued - expected).abs().max().item<float>()}");
        Assert.True(continued.allclose(wholeLogits, rtol: 0, atol: 1e-4), $"max difference {(continued - wholeLogits).abs().max().item<float>()}");
    }

    [Fact]
    public void OnAnF32File_ScoresAndGenerationsEqualTorchs()
    {
        var gguf = ReaderGguf();
        using var llama = Load(gguf, ModelEngine.LlamaCpp);
        using var torch = Load(gguf, ModelEngine.Torch);
        var passages = ReaderSample.Passages();
        var prompt = PreparedCitation.AnswerPrompt(llama, ReaderSample.Question, passages, new CitationOptions().Prompt);
        Assert.Equal(prompt, PreparedCitation.AnswerPrompt(torch, ReaderSample.Question, passages, new CitationOptions().Prompt));

        var options = new GenerationOptions { MaxTokens = 40, StopStrings = ["\n"] };
        var answer = llama.Generate(prompt, options);
        Assert.Equal(torch.Generate(prompt, options).TokenIds, answer.TokenIds);
        Assert.Contains("Cimgun Labs", answer.Text);

        var fromLlama = llama.ScoreContinuation(prompt, answer.TokenIds);
        var fromTorch = torch.ScoreContinuation(prompt, answer.TokenIds);
        Assert.Equal(fromTorch, fromLlama, (a, b) => Math.Abs(a - b) < 1e-4);
    }

    [Fact]
    public async Task OnAnF32File_CitationsAndAblationDropsEqualTorchs_WithOrWithoutTheGenerationsTrace()
    {
        var gguf = ReaderGguf();
        using var llama = Load(gguf, ModelEngine.LlamaCpp);
        using var torch = Load(gguf, ModelEngine.Torch);
        var options = new CitationOptions { Verify = new VerificationOptions() };
        var passages = ReaderSample.Passages();
        var prompt = PreparedCitation.AnswerPrompt(llama, ReaderSample.Question, passages, options.Prompt);
        var generated = llama.Generate(prompt, new GenerationOptions { MaxTokens = 96, StopStrings = ["\n"], KeepTrace = true });
        using var trace = generated.Trace;
        var request = new CitationRequest(ReaderSample.Question, passages, generated.Text.Trim(), options, generated.TokenIds);

        var onLlama = await new MirageCitationEngine(llama).CiteAsync(request, TestContext.Current.CancellationToken);
        var traced = await new MirageCitationEngine(llama).CiteAsync(request with { Trace = trace }, TestContext.Current.CancellationToken);
        var onTorch = await new MirageCitationEngine(torch).CiteAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal("llama.cpp", onLlama.Engine);
        Assert.Equal("torch", onTorch.Engine);
        Assert.Equal(Cited(onTorch), Cited(onLlama));
        Assert.Contains(Cited(onLlama), sentence => sentence.Length > 0);
        Assert.Equal(onTorch.Tokens.Select(t => t.Selected), onLlama.Tokens.Select(t => t.Selected));
        Assert.All(onTorch.Ablation!.Zip(onLlama.Ablation!), p =>
        {
            Assert.Equal(p.First.ContextEffect, p.Second.ContextEffect, 1e-3);
            Assert.Equal(p.First.PassageDrops, p.Second.PassageDrops, (a, b) => Math.Abs(a - b) < 1e-3);
        });
        Assert.All(onTorch.Sentences.Zip(onLlama.Sentences).Where(p => p.First.Support is not null), p =>
            Assert.Equal(p.First.Support!.Necessity, p.Second.Support!.Necessity, 1e-3));

        // The generation's sequence stands in for the pass over prompt and answer, on llama.cpp as on torch.
        Assert.Equal(onLlama.Cost.ForwardPasses - 1, traced.Cost.ForwardPasses);
        Assert.Equal(Cited(onLlama), Cited(traced));
        Assert.All(onLlama.Ablation!.Zip(traced.Ablation!), p => Assert.Equal(p.First.PassageDrops, p.Second.PassageDrops, (a, b) => Math.Abs(a - b) < 1e-4));
    }

    [Fact]
    public async Task AsLlamaCppServesByDefault_FlashAttentionAndAFloat16Cache_TheCitationsStayTheSame()
    {
        var gguf = ReaderGguf();
        using var exact = Load(gguf, ModelEngine.LlamaCpp);
        using var served = LanguageModel.Load(gguf);
        var request = new CitationRequest(ReaderSample.Question, ReaderSample.Passages(), "Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grekbrothholm.");
        var fromExact = await new MirageCitationEngine(exact).CiteAsync(request, TestContext.Current.CancellationToken);
        var fromServed = await new MirageCitationEngine(served).CiteAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(Cited(fromExact), Cited(fromServed));
        Assert.Equal([[3], [2]], Cited(fromServed));
        // float16 keys and values move the drops by hundredths of a nat, not the citations.
        Assert.All(fromExact.Ablation!.Zip(fromServed.Ablation!), p => Assert.Equal(p.First.PassageDrops, p.Second.PassageDrops, (a, b) => Math.Abs(a - b) < 0.05));
    }

    [Fact]
    public async Task AGradientMethod_OnLlamaCpp_IsRefusedSayingWhatToDo()
    {
        using var llama = Load(ReaderGguf(), ModelEngine.LlamaCpp);
        var request = new CitationRequest(ReaderSample.Question, ReaderSample.Passages(), "Lousdrur Rourti works for Cimgun Labs.", new CitationOptions().WithMethod("saliency"));
        var error = await Assert.ThrowsAsync<MirageException>(() => new MirageCitationEngine(llama).CiteAsync(request, TestContext.Current.CancellationToken));
        Assert.Contains("'saliency' needs gradients", error.Message);
        Assert.Contains("engine torch", error.Message);
    }

    [Fact]
    public void AFileLlamaCppRefuses_RunsOnTorchWithANote_UnlessLlamaCppWasAskedFor()
    {
        // Mirage reads a missing context length as 2048; llama.cpp requires the key.
        var refused = GgufCopy.Dequantized(ReaderGguf(), _temp.File("no-context-length.gguf"), key => key != "llama.context_length");

        using var model = LanguageModel.Load(refused);
        Assert.Equal(ModelEngine.Torch, model.Engine);
        Assert.Contains("llama.cpp could not load", model.EngineNote);
        Assert.Contains("context_length", model.EngineNote);
        Assert.Contains("Lousdrur", model.Generate(PreparedCitation.AnswerPrompt(model, ReaderSample.Question, ReaderSample.Passages(), new CitationOptions().Prompt),
            new GenerationOptions { MaxTokens = 12 }).Text);

        var error = Assert.Throws<InvalidCheckpointException>(() => LanguageModel.Load(refused, new ComputeOptions { Engine = ModelEngine.LlamaCpp }));
        Assert.Contains("llama.cpp could not load", error.Message);
    }

    private static int[][] Cited(CitationResult result) => result.Sentences.Select(s => s.Citations.Select(c => c.PassageIndex).ToArray()).ToArray();
}
