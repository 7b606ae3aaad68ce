using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Tests;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Citations;

/// <summary>Citing an answer with the trace of the generation that wrote it: one pass fewer, the same numbers.</summary>
public sealed class GenerationTraceTests
{
    private static (GenerationResult Generated, CitationRequest Request) Ask(LanguageModel model, CitationOptions options)
    {
        var passages = ReaderSample.Passages();
        var prompt = PreparedCitation.AnswerPrompt(model, ReaderSample.Question, passages, options.Prompt);
        var generated = model.Generate(prompt, new GenerationOptions { MaxTokens = 96, StopStrings = ["\n"], KeepTrace = true });
        return (generated, new CitationRequest(ReaderSample.Question, passages, generated.Text.Trim(), options, generated.TokenIds));
    }

    [Theory]
    [InlineData(CitationMethod.Ablation, 1e-4)]
    [InlineData(CitationMethod.Cci, 1e-4)]
    public async Task TheTrace_ReplacesThePassOverPromptAndAnswer(CitationMethod method, double tolerance)
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var engine = new MirageCitationEngine(model);
        var (generated, request) = Ask(model, new CitationOptions { Method = method });
        using var trace = generated.Trace;
        Assert.NotNull(trace);
        Assert.Equal(generated.TokenIds, trace.TokenIds);

        var plain = await engine.CiteAsync(request, TestContext.Current.CancellationToken);
        var traced = await engine.CiteAsync(request with { Trace = trace }, TestContext.Current.CancellationToken);

        Assert.Equal(plain.Cost.ForwardPasses - 1, traced.Cost.ForwardPasses);
        Assert.Equal(Cited(plain), Cited(traced));
        Assert.Equal(plain.Tokens.Select(t => t.Selected), traced.Tokens.Select(t => t.Selected));
        Assert.All(plain.Tokens.Zip(traced.Tokens), p => Assert.Equal(p.First.Cti, p.Second.Cti, tolerance));
        if (method == CitationMethod.Ablation)
            Assert.All(plain.Ablation!.Zip(traced.Ablation!), p => Assert.Equal(p.First.PassageDrops, p.Second.PassageDrops, (a, b) => Math.Abs(a - b) < 1e-3));
        else
            Assert.All(plain.Cues.Zip(traced.Cues), p => Assert.Equal(p.First.Scores, p.Second.Scores, (a, b) => Math.Abs(a - b) < 1e-3));
    }

    [Fact]
    public async Task InFloat64_TheGenerationsLogitsAreTheTeacherForcedOnes()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader, new ComputeOptions { DType = ScalarType.Float64 });
        var engine = new MirageCitationEngine(model);
        var (generated, request) = Ask(model, new CitationOptions());
        using var trace = generated.Trace;

        var plain = await engine.CiteAsync(request, TestContext.Current.CancellationToken);
        var traced = await engine.CiteAsync(request with { Trace = trace }, TestContext.Current.CancellationToken);

        Assert.All(plain.Tokens.Zip(traced.Tokens), p => Assert.Equal(p.First.Cti, p.Second.Cti, 1e-9));
    }

    [Fact]
    public async Task ATraceOfAnotherPrompt_OrOneAlreadyUsed_IsNotReused()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var engine = new MirageCitationEngine(model);
        var (generated, request) = Ask(model, new CitationOptions());
        using var trace = generated.Trace;
        var plain = await engine.CiteAsync(request, TestContext.Current.CancellationToken);

        // Another question renders another prompt: the trace is ignored, and the result is the plain one.
        var other = request with { Question = "Where was Lousdrur Rourti born?" };
        var otherPlain = await engine.CiteAsync(other, TestContext.Current.CancellationToken);
        var otherTraced = await engine.CiteAsync(other with { Trace = trace }, TestContext.Current.CancellationToken);
        Assert.Equal(otherPlain.Cost.ForwardPasses, otherTraced.Cost.ForwardPasses);
        Assert.Equal(otherPlain.Tokens.Select(t => t.Cti), otherTraced.Tokens.Select(t => t.Cti));

        // The first citation with it borrows its cache; a second runs its own pass over prompt and answer
        // (the logits still stand in for CTI's), and both give the plain citations.
        var first = await engine.CiteAsync(request with { Trace = trace }, TestContext.Current.CancellationToken);
        var second = await engine.CiteAsync(request with { Trace = trace }, TestContext.Current.CancellationToken);
        Assert.Equal(plain.Cost.ForwardPasses - 1, first.Cost.ForwardPasses);
        Assert.Equal(plain.Cost.ForwardPasses, second.Cost.ForwardPasses);
        Assert.Equal(Cited(plain), Cited(second));
        Assert.All(plain.Ablation!.Zip(second.Ablation!), p => Assert.Equal(p.First.PassageDrops, p.Second.PassageDrops, (a, b) => Math.Abs(a - b) < 1e-3));
    }

    [Fact]
    public void Generate_KeepsATraceOnlyWhenAsked()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var prompt = PreparedCitation.AnswerPrompt(model, ReaderSample.Question, ReaderSample.Passages(), new PromptTemplate());
        Assert.Null(model.Generate(prompt, new GenerationOptions { MaxTokens = 4 }).Trace);
        using var trace = model.Generate(prompt, new GenerationOptions { MaxTokens = 4, StopAtEos = false, KeepTrace = true }).Trace;
        Assert.Equal(4, trace!.TokenIds.Count);
        Assert.Equal(prompt, trace.PromptIds.ToArray());
    }

    [Fact]
    public void AStreamHandsOverItsTrace_OnlyWhenReadToItsEnd()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var prompt = PreparedCitation.AnswerPrompt(model, ReaderSample.Question, ReaderSample.Passages(), new PromptTemplate());
        var options = new GenerationOptions { MaxTokens = 6, StopAtEos = false, KeepTrace = true };
        using var generated = model.Generate(prompt, options).Trace;

        GenerationTrace? streamed = null;
        var ids = model.GenerateTokens(prompt, options, kept => streamed = kept).Select(t => t.Id).ToList();
        using (streamed)
        {
            Assert.NotNull(streamed);
            Assert.Equal(generated!.TokenIds, ids);
            Assert.Equal(generated.TokenIds, streamed.TokenIds);
        }

        GenerationTrace? left = null;
        Assert.Equal(2, model.GenerateTokens(prompt, options, kept => left = kept).Take(2).Count());
        Assert.Null(left);
    }

    private static int[][] Cited(CitationResult result) => result.Sentences.Select(s => s.Citations.Select(c => c.PassageIndex).ToArray()).ToArray();
}
