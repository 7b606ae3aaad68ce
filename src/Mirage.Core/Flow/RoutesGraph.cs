namespace Mirage.Core.Flow;

/// <summary>
/// The important part of the information flow from the input tokens to some output positions (LM-TT's
/// routes graph): the edges whose contribution passed the threshold, and every node they reach.
/// Serialises to JSON with stable snake_case names.
/// </summary>
/// <param name="Layers">The model's layer count.</param>
/// <param name="From">The positions whose output (the prediction of the next token) the routes lead to.</param>
/// <param name="Threshold">Contributions at or below it were dropped, and the rest renormalised.</param>
/// <param name="Nodes">The nodes on a route.</param>
/// <param name="Edges">The edges on a route, each with its contribution to the node it enters.</param>
/// <param name="TokenShares">
/// Per input position, the share of the outputs' flow that starts there: each output passes its
/// flow (split evenly between the outputs) down every edge in proportion to the edge's weight; the
/// shares sum to 1.
/// </param>
public sealed record RoutesGraph(
    int Layers,
    IReadOnlyList<int> From,
    double Threshold,
    IReadOnlyList<RouteNode> Nodes,
    IReadOnlyList<RouteEdge> Edges,
    IReadOnlyList<double> TokenShares)
{
    /// <summary>The share of the flow that starts at input positions [<paramref name="start"/>, <paramref name="end"/>): a passage's route share.</summary>
    public double ShareOf(int start, int end) => TokenShares.Skip(start).Take(end - start).Sum();

    /// <summary>
    /// The route whose edges' weights have the largest product, from an input token to an output:
    /// the one line that best sums up the graph. Its nodes, input first, and that product.
    /// </summary>
    public (IReadOnlyList<RouteNode> Nodes, double Weight) StrongestRoute()
    {
        var byId = Nodes.ToDictionary(n => n.Id, StringComparer.Ordinal);
        var into = Edges.ToLookup(e => e.To, StringComparer.Ordinal);
        // The best route from any input to each node; edges only climb layers, so recursion ends.
        var best = new Dictionary<string, (double Weight, string? Via)>(StringComparer.Ordinal);
        (double Weight, string? Via) Best(string id)
        {
            if (best.TryGetValue(id, out var known))
                return known;
            var found = byId[id].Kind == RouteNode.Input ? (1.0, null) : (0.0, (string?)null);
            foreach (var edge in into[id])
            {
                double weight = edge.Weight * Best(edge.From).Weight;
                if (weight > found.Item1)
                    found = (weight, edge.From);
            }
            return best[id] = found;
        }
        var end = From.Select(t => RouteNode.Of(RouteNode.AfterFfn, Layers - 1, t).Id).Where(byId.ContainsKey).MaxBy(id => Best(id).Weight);
        if (end is null || Best(end).Weight == 0)
            return ([], 0);
        var route = new List<RouteNode>();
        for (string? id = end; id is not null; id = best[id].Via)
            route.Add(byId[id]);
        route.Reverse();
        return (route, best[end].Weight);
    }
}

/// <summary>
/// A node: <c>X0_t</c> the input embedding of token t (layer -1); <c>A{l}_t</c> the residual stream after
/// layer l's attention; <c>M{l}_t</c> layer l's FFN block; <c>I{l}_t</c> the residual stream after it.
/// </summary>
public sealed record RouteNode(string Id, string Kind, int Layer, int Token)
{
    /// <summary>The node kinds, as LM-TT names them.</summary>
    public const string Input = "X0", AfterAttention = "A", Ffn = "M", AfterFfn = "I";

    internal static RouteNode Of(string kind, int layer, int token) =>
        new(kind == Input ? $"X0_{token}" : $"{kind}{layer}_{token}", kind, kind == Input ? -1 : layer, token);
}

/// <summary>
/// An edge and its weight: the part's contribution to the node it enters. An attention edge from a
/// token to itself also carries that token's residual stream (LM-TT merges the two);
/// <paramref name="Heads"/> are an attention edge's contributions per head.
/// </summary>
public sealed record RouteEdge(string From, string To, double Weight, IReadOnlyList<double>? Heads = null);
