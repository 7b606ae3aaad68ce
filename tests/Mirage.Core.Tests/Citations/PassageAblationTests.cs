using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Tests.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Citations;

/// <summary>Leave-one-out passage ablation with the shared prefix's KV cache reused, against running every input whole.</summary>
public sealed class PassageAblationTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly Passage[] Passages =
    [
        new(null, "Paris", "the cat sat on the mat in Paris."),
        new(null, "Rome", "the dog ran to the park in Rome."),
        new(null, "Oslo", "the bird sang at the window in Oslo."),
        new(null, "Lima", "the fish swam in the lake at Lima."),
    ];

    [Fact]
    public void TheCachedAblation_EqualsRunningEveryInputWhole_WithFewerTokens()
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config() with { MaxPositionEmbeddings = 512 }));
        var template = new PromptTemplate { Instruction = "Answer." };
        const string answer = "the cat sat in Paris. The bird sang.";
        var cached = PassageAblation.Compute(model, "where?", Passages, answer, template);
        var whole = PassageAblation.Compute(model, "where?", Passages, answer, template, reuseCache: false);

        Assert.Equal(2, cached.Sentences.Count);
        Assert.Equal(whole.LogProbs, cached.LogProbs, (a, b) => Math.Abs(a - b) < 1e-5);
        for (int s = 0; s < 2; s++)
        for (int p = 0; p < Passages.Length; p++)
            Assert.Equal(whole.Drops[s][p], cached.Drops[s][p], 1e-4);
        Assert.Contains(cached.Drops.SelectMany(d => d), d => Math.Abs(d) > 1e-3);
        // The full prompt runs once; each ablated input runs only past the passages before the removed one.
        Assert.True(cached.TokensRun < whole.TokensRun * 0.8, $"{cached.TokensRun} tokens against {whole.TokensRun}");
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
        var ablation = PassageAblation.Compute(blind, question, Passages, "the cat.", template);
        Assert.All(ablation.Drops.SelectMany(d => d), d => Assert.Equal(0, d, 1e-9));

        // The same layout with full attention: removals do move the answer.
        using var seeing = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, windowed with { SlidingWindows = [null] }, name: "full"));
        Assert.Contains(PassageAblation.Compute(seeing, question, Passages, "the cat.", template).Drops.SelectMany(d => d), d => Math.Abs(d) > 1e-6);
    }
}
