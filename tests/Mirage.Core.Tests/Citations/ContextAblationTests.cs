using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Tests.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Citations;

/// <summary>Passage ablation with the shared prefix's KV cache reused, against running every input whole; and verified citations on the shipped reader.</summary>
public sealed class ContextAblationTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly Passage[] Passages =
    [
        new("1", "Paris", "the cat sat on the mat in Paris."),
        new("2", "Rome", "the dog ran to the park in Rome."),
        new("3", "Oslo", "the bird sang at the window in Oslo."),
        new("4", "Lima", "the fish swam in the lake at Lima."),
    ];

    // Leave-one-out, groups, "only" masks and the empty prompt, in an order that makes the runner
    // restore prefixes that earlier ablations overwrote.
    private static readonly bool[][] Masks =
    [
        ContextAblation.Without(4, [3]), ContextAblation.Without(4, [0]), ContextAblation.Only(4, [2]), ContextAblation.Without(4, [1, 3]),
        ContextAblation.Without(4, [2]), ContextAblation.Only(4, []), ContextAblation.Without(4, [1]), ContextAblation.Only(4, [0, 3]),
    ];

    [Fact]
    public void TheCachedAblation_EqualsRunningEveryInputWhole_WithFewerTokens()
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config() with { MaxPositionEmbeddings = 512 }));
        var template = new PromptTemplate { Instruction = "Answer." };
        var input = PreparedCitation.Prepare(model, "where?", Passages, "the cat sat in Paris. The bird sang.", template);
        using var cached = ContextAblation.Start(model, input, "where?", Passages, template);
        using var whole = ContextAblation.Start(model, input, "where?", Passages, template, reuseCache: false);
        var fromCache = cached.Score(Masks);
        var fromScratch = whole.Score(Masks);

        Assert.Equal(whole.Full, cached.Full, (a, b) => Math.Abs(a - b) < 1e-5);
        for (int m = 0; m < Masks.Length; m++)
            Assert.Equal(fromScratch[m], fromCache[m], (a, b) => Math.Abs(a - b) < 1e-4);
        Assert.Contains(fromCache.SelectMany((run, m) => run.Select((v, t) => v - cached.Full[t])), d => Math.Abs(d) > 1e-3);
        // The full prompt runs once; each ablated input runs only past the passages before the first removed one.
        Assert.True(cached.TokensRun < whole.TokensRun * 0.85, $"{cached.TokensRun} tokens against {whole.TokensRun}");
        // A mask seen before is not run again.
        int passes = cached.ForwardPasses;
        cached.Score([Masks[2], ContextAblation.Without(4, [])]);
        Assert.Equal(passes, cached.ForwardPasses);

        // Spans cut out of a passage's text (hierarchical ablation) too, after the masks moved the cache.
        (int, int, int)[] spans = [(3, 0, 9), (1, 8, 20), (0, 4, 32)];
        var cut = cached.ScoreWithout(spans);
        var cutWhole = whole.ScoreWithout(spans);
        for (int k = 0; k < spans.Length; k++)
            Assert.Equal(cutWhole[k], cut[k], (a, b) => Math.Abs(a - b) < 1e-4);
        Assert.Contains(cut.SelectMany(run => run.Select((v, t) => v - cached.Full[t])), d => Math.Abs(d) > 1e-3);
        Assert.Contains("not inside", Assert.Throws<ArgumentException>(() => cached.ScoreWithout([(0, 5, 99)])).Message);
    }

    [Fact]
    public void APassageNoAnswerTokenCanSee_ChangesNothing()
    {
        // One layer with an 8-token window, and a question longer than that between the passages and
        // the answer: no answer token can attend to any passage, so no removal moves it.
        var windowed = TinyCheckpoint.Config("MistralForCausalLM") with { NumLayers = 1, SlidingWindows = [8], MaxPositionEmbeddings = 512 };
        using var blind = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, windowed, name: "windowed"));
        var template = new PromptTemplate { Template = "{passages}\n{question}", PassageTemplate = "{text}", UntitledPassageTemplate = "{text}", PassageSeparator = " " };
        const string question = "the the the the the the the the the the the the";
        double[][] Shifts(LanguageModel model)
        {
            var input = PreparedCitation.Prepare(model, question, Passages, "the cat.", template);
            using var ablation = ContextAblation.Start(model, input, question, Passages, template);
            return ablation.Score(Masks).Select(run => run.Select((v, t) => v - ablation.Full[t]).ToArray()).ToArray();
        }
        Assert.All(Shifts(blind).SelectMany(d => d), d => Assert.Equal(0, d, 1e-9));

        // The same layout with full attention: removals do move the answer.
        using var seeing = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, windowed with { SlidingWindows = [null] }, name: "full"));
        Assert.Contains(Shifts(seeing).SelectMany(d => d), d => Math.Abs(d) > 1e-6);
    }

    [Fact]
    public void MasksOfTheWrongSize_AreRefused_AndCancellationStopsThePasses()
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config() with { MaxPositionEmbeddings = 512 }));
        var template = new PromptTemplate();
        var input = PreparedCitation.Prepare(model, "q", Passages, "the cat.", template);
        using var ablation = ContextAblation.Start(model, input, "q", Passages, template);
        Assert.Contains("3 entries; the prompt has 4 passages", Assert.Throws<ArgumentException>(() => ablation.Score([new bool[3]])).Message);

        // A cancelled request stops before the next pass.
        int passes = ablation.ForwardPasses;
        Assert.Throws<OperationCanceledException>(() => ablation.Score([ContextAblation.Without(4, [1])], new CancellationToken(canceled: true)));
        Assert.Equal(passes, ablation.ForwardPasses);
    }

    [Fact]
    public async Task Verification_FlagsSaliencysWrongBirthplace_AndPassesAblations()
    {
        // The README's held-out question: the reader wrote passage 3's birthplace for the person of passage 4.
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var engine = new MirageCitationEngine(model);
        var passages = ReaderSample.Passages();
        var request = new CitationRequest(ReaderSample.Question, passages,
            "Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grekbrothholm.");
        var verify = new VerificationOptions();

        var saliency = await engine.CiteAsync(request with { Options = new CitationOptions { Method = CitationMethod.Cci, Verify = verify } }, TestContext.Current.CancellationToken);
        Assert.Equal([3], saliency.Sentences[1].Citations.Select(c => c.PassageIndex));
        var wrong = saliency.Sentences[1].Support!;
        Assert.False(wrong.Verified);
        Assert.True(wrong.Necessity < verify.MinNecessity, $"necessity {wrong.Necessity}");
        Assert.True(wrong.Sufficiency < verify.MinSufficiency, $"sufficiency {wrong.Sufficiency}");

        var ablation = await engine.CiteAsync(request with { Options = new CitationOptions { Verify = verify } }, TestContext.Current.CancellationToken);
        Assert.Equal([[3], [2]], ablation.Sentences.Select(s => s.Citations.Select(c => c.PassageIndex).ToArray()));
        Assert.All(ablation.Sentences, s => Assert.True(s.Support!.Verified, $"{s.Text}: {s.Support}"));
        Assert.All(ablation.Sentences, s => Assert.Equal(ablation.Ablation![s.Index].CitedDrop, s.Support!.Necessity, 1e-6));
    }

    [Fact]
    public async Task Evidence_NamesTheSentenceOfEachCitedPassageThatCarriesTheAnswer()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var engine = new MirageCitationEngine(model);
        var passages = ReaderSample.Passages();
        var result = await engine.CiteAsync(new CitationRequest(ReaderSample.Question, passages,
            "Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grekbrothholm.", new CitationOptions { Ablation = new AblationOptions { Evidence = true } }),
            TestContext.Current.CancellationToken);

        // The employer from passage 4's first sentence; the wrong birthplace from passage 3's.
        var employer = Assert.Single(result.Sentences[0].Citations);
        Assert.Equal("Lousdrur Rourti works for Cimgun Labs.", employer.Evidence![0].Text);
        var birthplace = Assert.Single(result.Sentences[1].Citations);
        Assert.Equal("Caszais Rourti was born in Grekbrothholm.", birthplace.Evidence![0].Text);
        foreach (var citation in new[] { employer, birthplace })
        {
            var text = passages[citation.PassageIndex].Text;
            Assert.All(citation.Evidence!, e => Assert.Equal(text[e.Start..e.End], e.Text));
            Assert.Equal(citation.Evidence!.OrderByDescending(e => e.Drop).Select(e => e.Text), citation.Evidence!.Select(e => e.Text));
        }
        // Off by default.
        var plain = await engine.CiteAsync(new CitationRequest("Where?", passages, "Lousdrur Rourti works for Cimgun Labs."), TestContext.Current.CancellationToken);
        Assert.All(plain.Sentences.SelectMany(s => s.Citations), c => Assert.Null(c.Evidence));
    }
}
