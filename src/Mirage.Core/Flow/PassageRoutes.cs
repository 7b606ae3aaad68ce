using Mirage.Core.Citations;
using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Flow;

/// <summary>
/// Why an answer sentence (or one answer token) rests on the passages: the routes graph from the
/// outputs that predict its tokens back to the prompt, each passage's share of that flow, and the
/// logit lens at the output that predicts its first token. Serialises to JSON with stable names.
/// </summary>
/// <param name="Sentence">The answer sentence traced, or null when one token was.</param>
/// <param name="AnswerTokens">The answer tokens traced (0-based in the answer).</param>
/// <param name="AnswerStart">Where the answer starts in the traced sequence (prompt then answer): answer token k is position <c>AnswerStart + k</c>, predicted by the output at the position before.</param>
/// <param name="Graph">The routes graph.</param>
/// <param name="Passages">Each passage's route share: the flow starting at its tokens.</param>
/// <param name="Lens">The logit lens after every block at the output predicting the first traced token.</param>
/// <param name="Tokens">The traced sequence's tokens as text (prompt then answer), for labels.</param>
/// <param name="NodeLens">Per graph node, its top tokens: the lens of a residual node, what an FFN node promotes.</param>
/// <param name="NodeNeurons">Per FFN node, the neurons that contribute most to the residual after it, each with what it promotes.</param>
/// <param name="NodeHeads">Per attention node (<c>A</c>), every head by its contribution, each with what it promotes.</param>
public sealed record PassageRoutes(
    int? Sentence,
    IReadOnlyList<int> AnswerTokens,
    int AnswerStart,
    RoutesGraph Graph,
    IReadOnlyList<PassageShare> Passages,
    IReadOnlyList<LensReading> Lens,
    IReadOnlyList<string> Tokens,
    IReadOnlyDictionary<string, IReadOnlyList<LensToken>> NodeLens,
    IReadOnlyDictionary<string, IReadOnlyList<NeuronContribution>> NodeNeurons,
    IReadOnlyDictionary<string, IReadOnlyList<HeadContribution>> NodeHeads)
{
    /// <summary>
    /// Traces answer sentence <paramref name="sentence"/> or answer token <paramref name="token"/>
    /// (exactly one of them) of a prepared citation request. The caller serialises model use.
    /// </summary>
    public static PassageRoutes Trace(LanguageModel model, PreparedCitation prepared, int? sentence, int? token, double threshold = RouteTracer.DefaultThreshold, CancellationToken cancellationToken = default)
    {
        if ((sentence is null) == (token is null))
            throw new MirageException("Name exactly one of an answer sentence or an answer token to trace.");
        IReadOnlyList<int> traced;
        if (sentence is int s)
        {
            if (s < 0 || s >= prepared.Sentences.Count)
                throw new MirageException($"Sentence {s} is outside the answer's {prepared.Sentences.Count} sentences.");
            traced = prepared.TokensOf(s);
            if (traced.Count == 0)
                throw new MirageException($"Sentence {s} has no token to trace.");
        }
        else
        {
            int k = token!.Value;
            if (k < 0 || k >= prepared.AnswerIds.Length)
                throw new MirageException($"Token {k} is outside the answer's {prepared.AnswerIds.Length} tokens.");
            traced = [k];
        }
        var ids = prepared.SequenceIds;
        RouteTracer.Validate(model, ids, [.. traced.Select(prepared.PredictingPosition)], threshold);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // One decomposed pass serves the graph, the lens and every node's view.
        using var pass = model.Decompose(ids);
        var graph = RouteTracer.Trace(pass.Decomposition!, [.. traced.Select(prepared.PredictingPosition)], threshold, cancellationToken);
        return new Views(model, prepared, ids, pass.Decomposition!).Of(sentence, traced, graph);
    }

    /// <summary>
    /// The routes of every answer token of a prepared citation request, each on its own (as
    /// <see cref="Trace"/> with that token), from one decomposed pass; the node views (lens, heads,
    /// neurons) of a node that several tokens' routes share are computed once. <paramref name="progress"/>
    /// hears how many tokens are traced. The caller serialises model use.
    /// </summary>
    public static IReadOnlyList<PassageRoutes> TraceEveryToken(LanguageModel model, PreparedCitation prepared, double threshold = RouteTracer.DefaultThreshold,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        if (prepared.AnswerIds.Length == 0)
            throw new MirageException("The answer has no token to trace.");
        var ids = prepared.SequenceIds;
        RouteTracer.Validate(model, ids, [.. Enumerable.Range(0, prepared.AnswerIds.Length).Select(prepared.PredictingPosition)], threshold);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var pass = model.Decompose(ids);
        // The graphs side by side (each layer's head values once), then each token's views.
        var graphs = RouteTracer.TraceEach(pass.Decomposition!, [.. Enumerable.Range(0, prepared.AnswerIds.Length).Select(k => (IReadOnlyList<int>)[prepared.PredictingPosition(k)])], threshold, cancellationToken);
        var views = new Views(model, prepared, ids, pass.Decomposition!);
        var traced = new List<PassageRoutes>(graphs.Count);
        for (int k = 0; k < graphs.Count; k++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            traced.Add(views.Of(null, [k], graphs[k]));
            progress?.Report(k + 1);
        }
        return traced;
    }

    // What a graph's routes read from one decomposed pass, with each node's views kept for the next graph.
    private sealed class Views(LanguageModel model, PreparedCitation prepared, int[] ids, IReadOnlyList<LayerDecomposition> decomposition)
    {
        private readonly List<string> _tokens = [.. ids.Select(id => model.Tokenizer.Decode([id], skipSpecialTokens: false))];
        private readonly Dictionary<string, IReadOnlyList<LensToken>> _lens = new(StringComparer.Ordinal);
        private readonly Dictionary<string, IReadOnlyList<NeuronContribution>> _neurons = new(StringComparer.Ordinal);
        private readonly Dictionary<string, IReadOnlyList<HeadContribution>> _heads = new(StringComparer.Ordinal);

        /// <summary>The routes of answer tokens <paramref name="traced"/> (of <paramref name="sentence"/>, if one was traced) from their <paramref name="graph"/>.</summary>
        public PassageRoutes Of(int? sentence, IReadOnlyList<int> traced, RoutesGraph graph)
        {
            var shares = prepared.Passages.Select(p => new PassageShare(p.Id, p.Index, p.TokenStart, p.TokenEnd, graph.ShareOf(p.TokenStart, p.TokenEnd))).ToList();
            var lens = LogitLens.AcrossLayers(model, decomposition, prepared.PredictingPosition(traced[0]));
            var unseen = graph.Nodes.Where(n => !_lens.ContainsKey(n.Id)).ToList();
            foreach (var (id, top) in LogitLens.AtNodes(model, decomposition, unseen))
                _lens[id] = top;
            foreach (var n in unseen.Where(n => n.Kind == RouteNode.Ffn))
                _neurons[n.Id] = FfnNeurons.Top(model, decomposition[n.Layer], n.Layer, n.Token);
            foreach (var n in unseen.Where(n => n.Kind == RouteNode.AfterAttention))
                _heads[n.Id] = AttentionHeads.At(model, decomposition[n.Layer], n.Token);
            return new PassageRoutes(sentence, traced, prepared.PromptIds.Length, graph, shares, lens, _tokens, Of(graph, _lens), Of(graph, _neurons), Of(graph, _heads));
        }

        // The views of this graph's nodes only, in its node order.
        private static Dictionary<string, T> Of<T>(RoutesGraph graph, Dictionary<string, T> views) =>
            graph.Nodes.Where(n => views.ContainsKey(n.Id)).ToDictionary(n => n.Id, n => views[n.Id], StringComparer.Ordinal);
    }
}

/// <summary>A passage (by id and 0-based index), its tokens [start, end) in the traced sequence, and the share of the traced flow that starts at them.</summary>
public sealed record PassageShare(string Id, int Index, int TokenStart, int TokenEnd, double Share);
