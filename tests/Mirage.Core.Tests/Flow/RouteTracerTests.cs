using Mirage.Core.Flow;
using Mirage.Core.Tests.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Flow;

/// <summary>
/// Routes graphs on random float64 checkpoints: the same graph and token shares as an independent
/// plain-loop implementation of LM-TT's definition, flow conserved in every family, and one-line
/// errors for what cannot be traced.
/// </summary>
public sealed class RouteTracerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(8, 0.04)]
    [InlineData(5, 0.02)]
    [InlineData(8, 0.0)]
    public void TheGraphOfOneToken_IsThePlainImplementations(int from, double threshold)
    {
        var config = TinyCheckpoint.Config();
        var directory = TinyCheckpoint.Write(_temp, config);
        using var model = TinyCheckpoint.Load(directory);
        int[] ids = TinyCheckpoint.RandomIds(9, 11);

        var graph = RouteTracer.Trace(model, ids, [from], threshold);
        var (edges, shares) = PlainRoutes.Trace(directory, config, ids, from, threshold);

        Assert.NotEmpty(edges);
        Assert.Equal(edges.Keys.Order().ToList(), graph.Edges.Select(e => (e.From, e.To)).Order().ToList());
        foreach (var edge in graph.Edges)
            Assert.Equal(edges[(edge.From, edge.To)], edge.Weight, 1e-9);
        Assert.Equal(shares.Length, graph.TokenShares.Count);
        for (int s = 0; s < shares.Length; s++)
            Assert.Equal(shares[s], graph.TokenShares[s], 1e-9);
        Assert.Equal(1, graph.TokenShares.Sum(), 1e-9);
        // Every node an edge names is listed once, and the output is one of them.
        Assert.Equal(graph.Edges.SelectMany(e => (string[])[e.From, e.To]).Distinct().Order(), graph.Nodes.Select(n => n.Id).Order());
        Assert.Contains(graph.Nodes, n => n.Id == $"I{config.NumLayers - 1}_{from}");
    }

    [Theory]
    [InlineData("LlamaForCausalLM", "")]
    [InlineData("Qwen3ForCausalLM", "")]
    [InlineData("Phi3ForCausalLM", "")]
    [InlineData("Gemma2ForCausalLM", ", \"attn_logit_softcapping\": 5.0, \"final_logit_softcapping\": 3.0, \"query_pre_attn_scalar\": 8")]
    public void InEveryFamily_TheFlowOfSeveralOutputs_ReachesTheInputWhole(string architecture, string extra)
    {
        var config = TinyCheckpoint.FamilyConfig(architecture, extra);
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, config));
        int[] ids = TinyCheckpoint.RandomIds(12, 5);

        var graph = RouteTracer.Trace(model, ids, [11, 7, 7]);

        Assert.Equal([11, 7], graph.From);
        Assert.Equal(1, graph.TokenShares.Sum(), 1e-9);
        // Nothing flows from a token after the latest output (causal attention).
        Assert.Equal(0, graph.TokenShares.Skip(12).Sum());
        // The edges into each residual node sum to 1: what is dropped is renormalised away.
        foreach (var into in graph.Edges.Where(e => !e.To.StartsWith('M')).GroupBy(e => e.To))
            Assert.Equal(1, into.Sum(e => e.Weight), 1e-9);
        Assert.All(graph.Edges.Where(e => e.Heads is not null), e => Assert.True(e.Heads!.Count == config.NumHeads));
    }

    [Fact]
    public void WhatCannotBeTraced_IsRefusedInOneLine()
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config()));
        int[] ids = [1, 2, 3];
        foreach (var (run, expected) in new (Action Run, string Expected)[]
        {
            (() => RouteTracer.Trace(model, [], [0]), "at least one token"),
            (() => RouteTracer.Trace(model, ids, []), "output position"),
            (() => RouteTracer.Trace(model, ids, [3]), "Output position 3 is outside the 3 tokens"),
            (() => RouteTracer.Trace(model, [1, 999], [1]), "Token id 999"),
            (() => RouteTracer.Trace(model, ids, [2], threshold: 0.5), "[0, 0.5)"),
            (() => RouteTracer.Trace(model, [.. Enumerable.Repeat(1, 129)], [0]), "context holds 128"),
        })
        {
            var error = Assert.Throws<MirageException>(run);
            Assert.Contains(expected, error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', error.Message);
        }
    }
}
