using Mirage.Core.Citations;
using Mirage.Core.Flow;
using Mirage.Core.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Flow;

/// <summary>
/// Routes on the embedded reader: the output that predicts the birthplace draws most of its flow
/// from the passage that states it. Routes follow the computation, not the token that comes next:
/// a forced wrong birthplace has the same routes at that position as the right one.
/// </summary>
public sealed class PassageRoutesTests
{
    private static readonly Passage[] Passages =
    [
        new("1", "Brensein Rourti", "Brensein Rourti was born in Horvairton. Brensein Rourti works for Fervir Partners. Brensein Rourti is well known in the region."),
        new("2", "Lousdrur Rourti", "Grothpon Droktom works for Cimgun Labs. Grothpon Droktom once met Lousdrur Rourti at a market."),
        new("3", "Caszais Rourti", "Caszais Rourti works for Dreinkai Systems. Caszais Rourti was born in Grekbrothholm."),
        new("4", "Lousdrur Rourti", "Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti is well known in the region. Lousdrur Rourti was born in Grouscelford."),
    ];

    [Fact]
    public async Task CitingByRoutes_TheBirthplaceSentenceCitesThePassageThatStatesIt()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader, new ComputeOptions { DType = TorchSharp.torch.ScalarType.Float32, Engine = ModelEngine.Torch });
        var options = new CitationOptions().WithMethod("routes");
        var result = await new MirageCitationEngine(model).CiteAsync(new CitationRequest("Where was Lousdrur Rourti born?", Passages, "Lousdrur Rourti was born in Grouscelford.", options));

        Assert.Equal("routes", result.Options.MethodName);
        Assert.Equal("4", result.Sentences[0].Citations[0].PassageId);
        Assert.All(result.Sentences[0].Citations, c => Assert.True(c.Score >= options.RouteRatio * result.Sentences[0].Citations[0].Score));
        Assert.Equal(0, result.Cost.BackwardPasses);
        Assert.Equal("routes", MirageJson.Deserialize<CitationResult>(MirageJson.Serialize(result)).Options.MethodName);
    }

    [Fact]
    public void TheOutputPredictingTheBirthplace_FlowsMostFromThePassageThatStatesIt_WhateverTokenIsForced()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader, new ComputeOptions { DType = TorchSharp.torch.ScalarType.Float32, Engine = ModelEngine.Torch });
        PassageRoutes Route(string answer, string place)
        {
            var prepared = PreparedCitation.Prepare(model, "Where was Lousdrur Rourti born?", Passages, answer, new PromptTemplate());
            int at = answer.IndexOf(place, StringComparison.Ordinal);
            int token = Enumerable.Range(0, prepared.AnswerTokens.Count).First(k => prepared.AnswerTokens[k].End > at);
            return PassageRoutes.Trace(model, prepared, sentence: null, token: token);
        }

        var right = Route("Lousdrur Rourti was born in Grouscelford.", "Grouscelford");
        var wrong = Route("Lousdrur Rourti was born in Horvairton.", "Horvairton");

        var shares = string.Join(", ", right.Passages.Select(p => $"{p.Id}: {p.Share:F3}"));
        Assert.True(right.Passages.MaxBy(p => p.Share)!.Id == "4" && right.Passages.Single(p => p.Id == "4").Share > 0.5, shares);
        Assert.InRange(right.Passages.Sum(p => p.Share), 0, 1);
        Assert.Equal(1, right.Graph.TokenShares.Sum(), 1e-6);
        Assert.Equal(2 * model.Config.NumLayers, right.Lens.Count);
        // The lens at the last block reads the model's own prediction there: the right birthplace.
        Assert.Equal("Grouscelford", right.Lens[^1].Top[0].Text.Trim().TrimStart('Ġ'));
        Assert.Equal(right.Passages.Select(p => p.Share), wrong.Passages.Select(p => p.Share));
        // Every node has its lens; the output's is the model's own prediction there.
        Assert.Equal(right.Graph.Nodes.Select(n => n.Id).Order(), right.NodeLens.Keys.Order());
        Assert.Equal(right.Lens[^1].Top[0].Id, right.NodeLens[right.Lens[^1].Node][0].Id);
        Assert.Equal(right.Graph.TokenShares.Count, right.Tokens.Count);
        Assert.Equal(right.Graph.Nodes.Where(n => n.Kind == RouteNode.Ffn).Select(n => n.Id).Order(), right.NodeNeurons.Keys.Order());
        Assert.Equal(right.Graph.Nodes.Where(n => n.Kind == RouteNode.AfterAttention).Select(n => n.Id).Order(), right.NodeHeads.Keys.Order());
        Assert.All(right.NodeHeads.Values, heads =>
        {
            Assert.Equal(model.Config.NumHeads, heads.Count);
            Assert.Equal(heads.Select(h => h.Contribution).OrderDescending(), heads.Select(h => h.Contribution));
            Assert.Equal(Enumerable.Range(0, model.Config.NumHeads), heads.Select(h => h.Head).Order());
        });
    }

    [Fact]
    public void EveryTokensRoutes_FromOnePass_AreEachTokensOwn()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader, new ComputeOptions { DType = TorchSharp.torch.ScalarType.Float32, Engine = ModelEngine.Torch });
        var prepared = PreparedCitation.Prepare(model, "Where was Lousdrur Rourti born?", Passages, "Lousdrur Rourti was born in Grouscelford.", new PromptTemplate());

        var heard = new List<int>();
        var every = PassageRoutes.TraceEveryToken(model, prepared, progress: new Heard(heard));

        Assert.Equal(prepared.AnswerIds.Length, every.Count);
        Assert.Equal(Enumerable.Range(1, every.Count), heard);
        for (int k = 0; k < every.Count; k++)
        {
            var alone = PassageRoutes.Trace(model, prepared, sentence: null, token: k);
            // Serialised, so every field counts: the graph, the shares, the lens and each node's views.
            Assert.Equal(MirageJson.Serialize(alone), MirageJson.Serialize(every[k]));
        }
    }

    private sealed class Heard(List<int> counts) : IProgress<int>
    {
        public void Report(int value) => counts.Add(value);
    }
}
