using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Flow;

/// <summary>A token the lens reads, with its probability, or a token a part of the model promotes, with its score.</summary>
public sealed record LensToken(int Id, string Text, double Value);

/// <summary>What the residual stream at one position predicts after one block: <c>Node</c> is the routes graph's node id.</summary>
public sealed record LensReading(string Node, int Layer, IReadOnlyList<LensToken> Top);

/// <summary>The tokens a block, head or neuron's output pushes up and pushes down.</summary>
public sealed record Promotions(IReadOnlyList<LensToken> Promoted, IReadOnlyList<LensToken> Suppressed);

/// <summary>
/// The logit lens (nostalgebraist 2020; LM-TT's per-node view): a residual-stream vector read as a
/// next-token distribution through the model's final norm and unembedding, and what a block, head or
/// neuron's output promotes: its dot product with each token's unembedding row (no norm: the
/// output is a direction added to the stream, not a stream).
/// </summary>
public static class LogitLens
{
    /// <summary>The most probable tokens, <paramref name="k"/> of them, that <paramref name="residual"/> <c>[C]</c> predicts.</summary>
    public static IReadOnlyList<LensToken> Read(LanguageModel model, Tensor residual, int k = 10)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var probabilities = model.Unembed(residual).to(float64).softmax(-1);
        return Top(model, probabilities, k, largest: true);
    }

    /// <summary>
    /// The lens at <paramref name="position"/> of <paramref name="ids"/> after every block: each
    /// layer's attention (<c>A{l}</c>) and FFN (<c>I{l}</c>); the last reading is the model's own
    /// next-token distribution. The caller serialises model use.
    /// </summary>
    public static IReadOnlyList<LensReading> AcrossLayers(LanguageModel model, IReadOnlyList<int> ids, int position, int k = 10)
    {
        if (position < 0 || position >= ids.Count)
            throw new MirageException($"Position {position} is outside the {ids.Count} tokens.");
        using var scope = NewDisposeScope();
        using var pass = model.Decompose(ids);
        return AcrossLayers(model, pass.Decomposition!, position, k);
    }

    /// <summary>The lens at <paramref name="position"/> after every block, from a decomposed pass already run.</summary>
    internal static IReadOnlyList<LensReading> AcrossLayers(LanguageModel model, IReadOnlyList<LayerDecomposition> decomposition, int position, int k = 10)
    {
        var readings = new List<LensReading>();
        for (int l = 0; l < decomposition.Count; l++)
        {
            readings.Add(new LensReading(RouteNode.Of(RouteNode.AfterAttention, l, position).Id, l, Read(model, decomposition[l].ResidualMid[0, position], k)));
            readings.Add(new LensReading(RouteNode.Of(RouteNode.AfterFfn, l, position).Id, l, Read(model, decomposition[l].ResidualPost[0, position], k)));
        }
        return readings;
    }

    /// <summary>
    /// The lens at every node of a routes graph (<c>X0</c>: the embedding; <c>A</c>, <c>I</c>: the
    /// residual after the block; <c>M</c>: the FFN block's output, read as what it promotes), by node
    /// id, from a decomposed pass over the graph's sequence.
    /// </summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<LensToken>> AtNodes(LanguageModel model, IReadOnlyList<LayerDecomposition> decomposition, IEnumerable<RouteNode> nodes, int k = 5)
    {
        var readings = new Dictionary<string, IReadOnlyList<LensToken>>(StringComparer.Ordinal);
        foreach (var node in nodes)
        {
            readings[node.Id] = node.Kind switch
            {
                RouteNode.Input => Read(model, decomposition[0].ResidualPre[0, node.Token], k),
                RouteNode.AfterAttention => Read(model, decomposition[node.Layer].ResidualMid[0, node.Token], k),
                RouteNode.AfterFfn => Read(model, decomposition[node.Layer].ResidualPost[0, node.Token], k),
                _ => Promote(model, decomposition[node.Layer].FfnOutput[0, node.Token], k).Promoted,
            };
        }
        return readings;
    }

    /// <summary>The <paramref name="k"/> tokens <paramref name="output"/> <c>[C]</c> promotes most and suppresses most.</summary>
    public static Promotions Promote(LanguageModel model, Tensor output, int k = 10)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var unembedding = model.UnembeddingMatrix;
        var scores = unembedding.matmul(output.to(unembedding.dtype).to(unembedding.device)).to(float64);   // [V]
        return new Promotions(Top(model, scores, k, largest: true), Top(model, scores, k, largest: false));
    }

    private static List<LensToken> Top(LanguageModel model, Tensor values, int k, bool largest)
    {
        var (top, ids) = values.topk(Math.Clamp(k, 1, (int)values.shape[0]), largest: largest);
        var scores = top.cpu().data<double>().ToArray();
        return [.. ids.cpu().data<long>().ToArray().Select((id, i) => new LensToken((int)id, model.Tokenizer.Decode([(int)id], skipSpecialTokens: false), scores[i]))];
    }
}
