using Mirage.Core.Flow;
using Mirage.Core.Models;
using Mirage.Core.Tests.Models;
using Mirage.Tests;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Flow;

/// <summary>
/// The forward pass taken apart for information-flow routes: in float64 on random checkpoints of
/// each family, every layer's parts add up to the whole, and the decomposed pass is the ordinary one.
/// </summary>
public sealed class DecompositionTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("LlamaForCausalLM", "")]
    [InlineData("Qwen3ForCausalLM", "")]
    [InlineData("Phi3ForCausalLM", "")]
    [InlineData("Gemma2ForCausalLM", ", \"attn_logit_softcapping\": 5.0, \"final_logit_softcapping\": 3.0, \"query_pre_attn_scalar\": 8")]
    public void EachLayersParts_AddUpToTheWhole_AndThePassIsTheOrdinaryOne(string architecture, string extra)
    {
        var config = TinyCheckpoint.FamilyConfig(architecture, extra);
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, config));
        int[] ids = TinyCheckpoint.RandomIds(9, 3);
        int[] at = [8, 3];

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        var positions = Mirage.Core.Models.TorchScalars.Range(ids.Length).unsqueeze(0);
        using var plain = model.Forward(new ForwardRequest(model.Embed(input), positions));
        using var taken = model.Forward(new ForwardRequest(model.Embed(input), positions, Decompose: true));

        Assert.Equal(config.NumLayers, taken.Decomposition!.Count);
        Assert.True(plain.Logits.sub(taken.Logits).abs().max().item<double>() < 1e-10);
        var index = tensor(at.Select(p => (long)p).ToArray());
        foreach (var layer in taken.Decomposition)
        {
            var parts = layer.AttentionParts(layer.HeadValues(), index);
            Assert.Equal([1, at.Length, ids.Length, config.NumHeads, config.HiddenSize], parts.shape);
            var rebuilt = layer.ResidualPre.index_select(1, index).Plus(parts.sum([2, 3])).Plus(layer.AttentionRest(index));
            Assert.True(rebuilt.sub(layer.ResidualMid.index_select(1, index)).abs().max().item<double>() < 1e-10, $"{architecture}: attention parts");
            Assert.True(layer.ResidualMid.Plus(layer.FfnOutput).sub(layer.ResidualPost).abs().max().item<double>() < 1e-10, $"{architecture}: ffn");
            // A source after the target gets nothing (causal attention).
            Assert.Equal(0, parts[0, 1, 4..].abs().max().item<double>());
        }
        for (int l = 1; l < config.NumLayers; l++)
            Assert.True(taken.Decomposition[l].ResidualPre.sub(taken.Decomposition[l - 1].ResidualPost).abs().max().item<double>() == 0);
    }

    [Theory]
    [InlineData("LlamaForCausalLM", "")]
    [InlineData("Gemma2ForCausalLM", ", \"attn_logit_softcapping\": 5.0, \"final_logit_softcapping\": 3.0, \"query_pre_attn_scalar\": 8")]
    public void PartDistancesAndHeadOutputs_AreThePartsMeasuredAndSummed_OverTheFirstSources_InAReusedWorkspace(string architecture, string extra)
    {
        var config = TinyCheckpoint.FamilyConfig(architecture, extra);
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, config));
        int[] ids = TinyCheckpoint.RandomIds(9, 5);

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var pass = model.Decompose(ids);
        var index = tensor(new long[] { 2, 5 });
        // Larger than needed and full of leftovers, as a buffer reused across chunks is.
        using var nan = TorchSharp.ScalarExtensionMethods.ToScalar(double.NaN);
        var workspace = full([10_000L], nan, float64);
        foreach (var layer in pass.Decomposition!)
        {
            var headValues = layer.HeadValues();
            var whole = layer.ResidualMid.index_select(1, index);
            var expected = layer.AttentionParts(headValues, index).narrow(2, 0, 6).sub(whole.unsqueeze(2).unsqueeze(2)).abs().sum(-1); // [B, P, 6, H]
            var distances = layer.AttentionPartDistances(headValues.narrow(2, 0, 6), index, whole, workspace);
            Assert.Equal(expected.shape, distances.shape);
            Assert.True(distances.sub(expected).abs().max().item<double>() < 1e-12, architecture);
            // Each head's output there, without the per-source parts, is theirs summed.
            var perHead = layer.AttentionParts(headValues, index).sum(dim: 2);                       // [B, P, H, C]
            Assert.True(layer.HeadOutputs(index).sub(perHead).abs().max().item<double>() < 1e-12, architecture);
        }
    }

    [Theory]
    [InlineData("LlamaForCausalLM", "")]
    [InlineData("Phi3ForCausalLM", "")]
    [InlineData("Gemma2ForCausalLM", ", \"attn_logit_softcapping\": 5.0, \"final_logit_softcapping\": 3.0, \"query_pre_attn_scalar\": 8")]
    public void TheFfnBlock_SplitsByNeuron_IntoItsOutput(string architecture, string extra)
    {
        var config = TinyCheckpoint.FamilyConfig(architecture, extra);
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, config));
        int[] ids = TinyCheckpoint.RandomIds(7, 8);

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        using var pass = model.Forward(new ForwardRequest(model.Embed(input), Mirage.Core.Models.TorchScalars.Range(ids.Length).unsqueeze(0), Decompose: true));
        for (int l = 0; l < config.NumLayers; l++)
        {
            foreach (int p in new[] { 0, 6 })
            {
                var (neurons, rest) = model.FfnNeurons(l, pass.Decomposition![l], p);
                Assert.Equal([config.IntermediateSize, config.HiddenSize], neurons.shape);
                var gap = neurons.sum(dim: 0).Plus(rest).sub(pass.Decomposition[l].FfnOutput[0, p]).abs().max().item<double>();
                Assert.True(gap < 1e-10, $"{architecture}: layer {l}, position {p}: {gap} of {pass.Decomposition[l].FfnOutput[0, p].abs().max().item<double>()}, rest {rest.abs().max().item<double>()}");
            }
            var top = FfnNeurons.Top(model, pass.Decomposition![l], l, 6);
            Assert.Equal(5, top.Count);
            Assert.Equal(top.Select(n => n.Contribution).OrderDescending(), top.Select(n => n.Contribution));
            Assert.All(top, n => Assert.Equal(3, n.Promotes.Count));
        }
    }

    [Fact]
    public void Proximity_MatchesAHandWorkedSum()
    {
        // whole = a + b = [2, 1]: ||whole||1 = 3, ||whole - a||1 = 1, ||whole - b||1 = 2, so proximities 2 and 1.
        var whole = tensor(new double[] { 2, 1 });
        var parts = tensor(new double[,] { { 2, 0 }, { 0, 1 } });
        var shares = Contributions.Of(parts, whole);
        Assert.Equal(2.0 / 3, shares[0].item<double>(), 12);
        Assert.Equal(1.0 / 3, shares[1].item<double>(), 12);

        // A part pointing away from the whole gets the floor; the residual counts as one more part.
        var (blocks, residual) = Contributions.WithResidual(tensor(new double[,] { { -2, -1 } }), tensor(new double[] { 4, 2 }), tensor(new double[] { 2, 1 }));
        double away = Contributions.Epsilon, home = 3 - 3; // ||whole - residual||1 = 3, so the residual's proximity is 0 and floors too
        Assert.Equal(away / (away + Math.Max(home, Contributions.Epsilon)), blocks[0].item<double>(), 12);
        Assert.Equal(0.5, residual.item<double>(), 12);
    }

    [Fact]
    public void Threshold_DropsSmallContributions_AndRenormalisesTheRest()
    {
        var (blocks, residual) = Contributions.ThresholdAndRenormalize(0.1, tensor(new double[,] { { 0.5, 0.05, 0.2 } }), tensor(new double[] { 0.25 }));
        Assert.Equal([0.5 / 0.95, 0, 0.2 / 0.95], blocks[0].data<double>().ToArray(), new DoubleTolerance(1e-12));
        Assert.Equal(0.25 / 0.95, residual[0].item<double>(), 12);
    }

    private sealed class DoubleTolerance(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(double obj) => 0;
    }
}
