using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Flow;

/// <summary>
/// Traces information-flow routes (Ferrando &amp; Voita 2024; the LM Transparency Tool's graph) from
/// output positions back to the input tokens. One decomposed forward pass; then, from the top layer
/// down, only the nodes already on a route are taken apart, so the cost is the targets' share of
/// the full <c>T x T x H x C</c> split. The graph equals LM-TT's: its full graph with contributions
/// thresholded and renormalised, searched from the outputs along edges above the same threshold.
/// </summary>
public static class RouteTracer
{
    /// <summary>LM-TT's default contribution threshold.</summary>
    public const double DefaultThreshold = 0.04;

    // Attention parts are built for this many numbers at a time, in one buffer reused by every chunk (64 MiB in float32).
    private const long MaxPartElements = 1L << 24;

    /// <summary>
    /// The routes graph from the outputs at <paramref name="from"/> (each the prediction of the token
    /// after it) over the sequence <paramref name="ids"/>. The caller serialises model use (the
    /// model's <see cref="LanguageModel.ComputeGate"/>).
    /// </summary>
    public static RoutesGraph Trace(LanguageModel model, IReadOnlyList<int> ids, IReadOnlyList<int> from, double threshold = DefaultThreshold, CancellationToken cancellationToken = default)
    {
        Validate(model, ids, from, threshold);
        using var scope = NewDisposeScope();
        using var pass = model.Decompose(ids);
        return Trace(pass.Decomposition!, from, threshold, cancellationToken);
    }

    /// <summary>
    /// The routes graph from a decomposed pass already run over the sequence (<see cref="LanguageModel.Decompose"/>),
    /// so one pass serves several traces and the views of their nodes; the caller has validated
    /// <paramref name="from"/> and <paramref name="threshold"/> (<see cref="Validate"/>).
    /// </summary>
    internal static RoutesGraph Trace(IReadOnlyList<LayerDecomposition> decomposition, IReadOnlyList<int> from, double threshold, CancellationToken cancellationToken) =>
        TraceEach(decomposition, [from], threshold, cancellationToken)[0];

    /// <summary>
    /// One routes graph per set of outputs in <paramref name="froms"/>, each the graph a trace of
    /// those outputs alone gives, traced side by side from the top layer down so that each layer's
    /// head values are computed once for all of them.
    /// </summary>
    internal static IReadOnlyList<RoutesGraph> TraceEach(IReadOnlyList<LayerDecomposition> decomposition, IReadOnlyList<IReadOnlyList<int>> froms, double threshold, CancellationToken cancellationToken)
    {
        int tokens = (int)decomposition[0].ResidualPre.shape[1], layers = decomposition.Count;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var scratch = new Scratch();
        var graphs = froms.Select(from => new GrowingGraph(tokens, layers, from)).ToList();
        for (int l = layers - 1; l >= 0; l--)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var layerScope = NewDisposeScope();
            var layer = decomposition[l];
            Tensor? headValues = null;
            foreach (var graph in graphs)
            {
                var throughAttention = FfnStep(layer, l, graph.Reached(l), threshold, graph);
                graph.Flow = throughAttention.Length == 0
                    ? new double[tokens]
                    : AttentionStep(layer, l, headValues ??= layer.HeadValues(), throughAttention, threshold, scratch, graph);
            }
        }
        return [.. graphs.Select(g => g.ToGraph(threshold))];
    }

    // One graph as it is traced top-down: its nodes and edges so far, and the flow reaching each
    // token's residual stream after the current layer (I nodes).
    private sealed class GrowingGraph
    {
        private readonly Dictionary<string, RouteNode> _nodes = new(StringComparer.Ordinal);
        private readonly List<RouteEdge> _edges = [];
        private readonly int _layers;
        private readonly int[] _outputs;

        public GrowingGraph(int tokens, int layers, IReadOnlyList<int> from)
        {
            _layers = layers;
            _outputs = [.. from.Distinct()];
            Flow = new double[tokens];
            foreach (int t in _outputs)
            {
                Flow[t] += 1.0 / _outputs.Length;
                Node(RouteNode.AfterFfn, layers - 1, t);
            }
        }

        public double[] Flow { get; set; }

        public RouteNode Node(string kind, int layer, int token)
        {
            var node = RouteNode.Of(kind, layer, token);
            return _nodes.TryAdd(node.Id, node) ? node : _nodes[node.Id];
        }

        public void Edge(RouteNode source, RouteNode target, double weight, IReadOnlyList<double>? heads = null) =>
            _edges.Add(new RouteEdge(source.Id, target.Id, weight, heads));

        /// <summary>The tokens whose residual stream after layer <paramref name="layer"/> is on a route, in order.</summary>
        public int[] Reached(int layer) => [.. Enumerable.Range(0, Flow.Length).Where(t => _nodes.ContainsKey(RouteNode.Of(RouteNode.AfterFfn, layer, t).Id))];

        public RoutesGraph ToGraph(double threshold) => new(_layers, _outputs, threshold, [.. _nodes.Values], _edges, Flow);
    }

    // I{l}_t <- M{l}_t <- A{l}_t and I{l}_t <- A{l}_t: the FFN block against the residual it is added to.
    // The tokens whose A node is on a route; all of an I node's flow passes to its own A node.
    private static int[] FfnStep(LayerDecomposition layer, int l, int[] reached, double threshold, GrowingGraph graph)
    {
        using var scope = NewDisposeScope();
        var at = tensor(reached.Select(t => (long)t).ToArray(), device: layer.ResidualPre.device);
        var (block, residual) = Contributions.WithResidual(
            layer.FfnOutput.index_select(1, at).unsqueeze(0), layer.ResidualMid.index_select(1, at), layer.ResidualPost.index_select(1, at)); // [1, B, P], [B, P]
        (block, residual) = Contributions.ThresholdAndRenormalize(threshold, block.permute(1, 2, 0), residual);                             // [B, P, 1], [B, P]
        var blockShares = block[0, .., 0].to(float64).cpu().data<double>().ToArray();
        var residualShares = residual[0].to(float64).cpu().data<double>().ToArray();
        var through = new List<int>();
        for (int i = 0; i < reached.Length; i++)
        {
            int t = reached[i];
            var after = graph.Node(RouteNode.AfterFfn, l, t);
            if (blockShares[i] > threshold)
            {
                var ffn = graph.Node(RouteNode.Ffn, l, t);
                graph.Edge(ffn, after, blockShares[i]);
                graph.Edge(graph.Node(RouteNode.AfterAttention, l, t), ffn, blockShares[i]);
            }
            if (residualShares[i] > threshold)
                graph.Edge(graph.Node(RouteNode.AfterAttention, l, t), after, residualShares[i]);
            if (blockShares[i] > threshold || residualShares[i] > threshold)
                through.Add(t);
        }
        return [.. through];
    }

    // A{l}_t <- I{l-1}_s (X0_s below the first layer), per source token with its heads; the residual
    // stream joins the edge from t to itself. Returns the flow reaching the layer's inputs.
    private static double[] AttentionStep(LayerDecomposition layer, int l, Tensor headValues, int[] targets, double threshold, Scratch scratch, GrowingGraph graph)
    {
        int tokens = graph.Flow.Length;
        var below = new double[tokens];
        using var scope = NewDisposeScope();
        var positions = TorchScalars.Range(tokens, headValues.device);
        long perSource = headValues.shape[1] * headValues.shape[3];
        // Targets (in ascending order) in chunks whose parts fit the budget; a chunk's sources end at
        // its last target, since no target attends to a later token.
        for (int first = 0; first < targets.Length;)
        {
            int end = first + 1;
            while (end < targets.Length && (end - first + 1) * (targets[end] + 1L) * perSource <= MaxPartElements)
                end++;
            using var chunkScope = NewDisposeScope();
            var taken = targets[first..end];
            first = end;
            int sources = taken[^1] + 1;
            var at = tensor(taken.Select(t => (long)t).ToArray(), device: headValues.device);
            var whole = layer.ResidualMid.index_select(1, at);                                 // [B, P, C]
            var distances = layer.AttentionPartDistances(headValues.narrow(2, 0, sources), at, whole,
                scratch.Take(taken.Length * sources * perSource * headValues.shape[0], headValues.dtype, headValues.device)); // [B, P, S, H]
            var heads = Contributions.ProximityFromDistance(whole.unsqueeze(2).unsqueeze(2), distances); // [B, P, S, H]
            var residual = Contributions.Proximity(layer.ResidualPre.index_select(1, at), whole); // [B, P]
            // A source after its target gets no attention, only the eps floor: it is left out (LM-TT keeps that floor).
            var causal = at.unsqueeze(1).ge(positions.narrow(0, 0, sources).unsqueeze(0)).to(heads.dtype); // [P, S]
            heads = heads.mul(causal.unsqueeze(-1));
            var total = heads.sum([2, 3]).Plus(residual);                                      // [B, P]
            (heads, residual) = Contributions.ThresholdAndRenormalize(threshold, heads.div(total.unsqueeze(-1).unsqueeze(-1)), residual.div(total)); // [B, P, S, H], [B, P]
            int h = (int)heads.shape[3];
            var perHead = heads[0].to(float64).cpu().data<double>().ToArray();                 // [P, S, H]
            var perSourceShares = heads[0].sum(dim: -1).to(float64).cpu().data<double>().ToArray(); // [P, S]
            var residualShares = residual[0].to(float64).cpu().data<double>().ToArray();
            for (int i = 0; i < taken.Length; i++)
            {
                int t = taken[i];
                var target = graph.Node(RouteNode.AfterAttention, l, t);
                for (int s = 0; s <= t; s++)
                {
                    double weight = perSourceShares[i * sources + s] + (s == t ? residualShares[i] : 0);
                    if (weight <= threshold)
                        continue;
                    var source = l == 0 ? graph.Node(RouteNode.Input, 0, s) : graph.Node(RouteNode.AfterFfn, l - 1, s);
                    graph.Edge(source, target, weight, perHead.AsSpan((i * sources + s) * h, h).ToArray());
                    below[s] += graph.Flow[t] * weight;
                }
            }
        }
        return below;
    }

    // One buffer for every chunk's attention parts, grown when a chunk needs more.
    private sealed class Scratch : IDisposable
    {
        private Tensor? _buffer;

        public Tensor Take(long elements, ScalarType dtype, Device device)
        {
            if (_buffer is null || _buffer.numel() < elements || _buffer.dtype != dtype)
            {
                _buffer?.Dispose();
                _buffer = empty([elements], dtype, device).DetachFromDisposeScope();
            }
            return _buffer.narrow(0, 0, elements);
        }

        public void Dispose() => _buffer?.Dispose();
    }

    /// <summary>Throws a one-line <see cref="MirageException"/> for what cannot be traced: the engine, the lengths, the positions, the ids, the threshold.</summary>
    internal static void Validate(LanguageModel model, IReadOnlyList<int> ids, IReadOnlyList<int> from, double threshold)
    {
        if (model.Engine != ModelEngine.Torch)
            throw new MirageException("Routes need the model's internals, which the llama.cpp engine does not expose; load the model with --engine torch.");
        if (ids.Count == 0)
            throw new MirageException("Routes need at least one token.");
        if (ids.Count > model.ContextLength)
            throw new MirageException($"The text is {ids.Count} tokens; the model's context holds {model.ContextLength}.");
        if (from.Count == 0)
            throw new MirageException("Routes need at least one output position to start from.");
        foreach (int p in from)
        {
            if (p < 0 || p >= ids.Count)
                throw new MirageException($"Output position {p} is outside the {ids.Count} tokens.");
        }
        foreach (int id in ids)
        {
            if (id < 0 || id >= model.Config.VocabSize)
                throw new MirageException($"Token id {id} is outside the model's vocabulary of {model.Config.VocabSize}.");
        }
        if (!(threshold >= 0 && threshold < 0.5))
            throw new MirageException($"The routes threshold must be in [0, 0.5), got {threshold}.");
    }
}
