using Mirage.Core.Flow;
using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Citations;

/// <summary>
/// <see cref="CitationMethod.Routes"/>: per sentence, the information-flow routes from the outputs
/// that predict its tokens back to the prompt (<see cref="RouteTracer"/>), each passage scored by
/// the share of that flow starting at its tokens. The top passage is cited with any other holding at
/// least <see cref="CitationOptions.RouteRatio"/> of its share, strongest first, at most
/// <see cref="CitationOptions.AtMostCitations"/>. A sentence with no token to trace cites nothing.
/// </summary>
internal static class RouteCitations
{
    public static IReadOnlyList<CitedSentence> Build(LanguageModel model, PreparedCitation input, CitationOptions options, CancellationToken cancellationToken)
    {
        var ids = input.SequenceIds;
        // Each sentence's outputs: the positions predicting its tokens.
        var outputs = Enumerable.Range(0, input.Sentences.Count).Select(s => input.TokensOf(s).Select(input.PredictingPosition).ToList()).ToList();
        // The engine, the lengths and the ids are checked once; a sentence without outputs cites nothing.
        RouteTracer.Validate(model, ids, [.. outputs.SelectMany(o => o).DefaultIfEmpty(ids.Length - 1)], RouteTracer.DefaultThreshold);
        using var scope = NewDisposeScope();
        // One decomposed pass serves every sentence's routes, traced side by side.
        using var pass = model.Decompose(ids);
        var traced = Enumerable.Range(0, input.Sentences.Count).Where(s => outputs[s].Count > 0).ToList();
        var graphs = RouteTracer.TraceEach(pass.Decomposition!, [.. traced.Select(s => outputs[s])], RouteTracer.DefaultThreshold, cancellationToken);
        var graphOf = traced.Zip(graphs).ToDictionary(p => p.First, p => p.Second);
        var cited = new List<CitedSentence>();
        for (int s = 0; s < input.Sentences.Count; s++)
        {
            var citations = new List<Citation>();
            if (graphOf.TryGetValue(s, out var graph))
            {
                var shares = input.Passages.Select(p => graph.ShareOf(p.TokenStart, p.TokenEnd)).ToArray();
                double top = shares.Max();
                if (top > 0)
                {
                    citations.AddRange(Enumerable.Range(0, shares.Length)
                        .Where(p => shares[p] >= options.RouteRatio * top)
                        .OrderByDescending(p => shares[p])
                        .Take(options.AtMostCitations ?? shares.Length)
                        .Select(p => new Citation(input.Passages[p].Id, p, shares[p], [])));
                }
            }
            cited.Add(new CitedSentence(s, input.Sentences[s].Start, input.Sentences[s].End, input.Sentences[s].Text, citations));
        }
        return cited;
    }
}
