using Mirage.Core.Flow;

namespace Mirage.Core.Tests.Flow;

/// <summary>A routes graph's one-line summary, worked by hand on a small graph.</summary>
public sealed class RoutesGraphTests
{
    [Fact]
    public void TheStrongestRoute_HasTheLargestProductOfWeights_NotTheLargestFirstStep()
    {
        // Two layers over three tokens. From I1_2 through A1_2, the larger step (0.6) leads to I0_2,
        // whose inputs split its flow (0.55 and 0.45); the smaller (0.4) to token 0's strong chain (0.9).
        RouteEdge[] edges =
        [
            new("A1_2", "I1_2", 1.0),
            new("I0_2", "A1_2", 0.6, [0.0, 0.0]),
            new("I0_0", "A1_2", 0.4, [0.4, 0.0]),
            new("A0_2", "I0_2", 1.0),
            new("X0_2", "A0_2", 0.45, [0.0, 0.0]),
            new("X0_1", "A0_2", 0.55, [0.0, 0.55]),
            new("A0_0", "I0_0", 1.0),
            new("X0_0", "A0_0", 0.9, [0.0, 0.0]),
        ];
        var nodes = edges.SelectMany(e => new[] { e.From, e.To }).Distinct().Select(Parse).ToList();
        var graph = new RoutesGraph(2, [2], 0.04, nodes, edges, [0.36, 0.33, 0.27]);

        var (route, weight) = graph.StrongestRoute();

        // 0.9 x 1 x 0.4 x 1 = 0.36 beats the greedy route's 0.55 x 1 x 0.6 x 1 = 0.33.
        Assert.Equal(["X0_0", "A0_0", "I0_0", "A1_2", "I1_2"], route.Select(n => n.Id));
        Assert.Equal(0.36, weight, 12);
    }

    [Fact]
    public void AGraphWithoutEdges_HasNoStrongestRoute()
    {
        var graph = new RoutesGraph(2, [0], 0.04, [RouteNode.Of(RouteNode.AfterFfn, 1, 0)], [], [0.0]);

        Assert.Equal((0, 0.0), (graph.StrongestRoute().Nodes.Count, graph.StrongestRoute().Weight));
    }

    private static RouteNode Parse(string id) => id[0] == 'X'
        ? RouteNode.Of(RouteNode.Input, 0, int.Parse(id[3..], System.Globalization.CultureInfo.InvariantCulture))
        : RouteNode.Of(id[..1], id[1] - '0', int.Parse(id[3..], System.Globalization.CultureInfo.InvariantCulture));
}
