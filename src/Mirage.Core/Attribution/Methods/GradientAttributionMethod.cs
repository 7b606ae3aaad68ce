using Mirage.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution.Methods;

/// <summary>
/// Base of the gradient methods: obtains d f_k / d e for each target k (per
/// <see cref="AttributionOptions.GradientStrategy"/>), e being the input embeddings or, for the
/// layer methods, a decoder layer's output; lets the subclass turn gradient and activation into
/// per-dimension scores, then reduces over the hidden dimension.
/// </summary>
public abstract class GradientAttributionMethod : IAttributionMethod
{
    /// <inheritdoc />
    public abstract string Name { get; }

    /// <inheritdoc />
    public virtual long TokenPasses(int length, int targets, AttributionOptions options) => 3L * length * targets;

    /// <summary>Per-dimension scores <c>[T, C]</c> from the gradient and the activation it was taken against (the input embeddings, or a layer's output).</summary>
    protected abstract Tensor ScoreDimensions(Tensor gradient, Tensor embeddings);

    /// <summary>
    /// The decoder layer whose output the gradient is taken against, or null for the input
    /// embeddings (every method but the layer methods, and theirs by default, as in Inseq).
    /// </summary>
    protected virtual int? ActivationLayer(LanguageModel model, AttributionOptions options) => null;

    /// <inheritdoc />
    public virtual AttributionResult Attribute(LanguageModel model, AttributionRequest request, TargetEvaluator evaluator)
    {
        var options = request.Options ?? new AttributionOptions();
        var scores = new float[request.Targets.Count][];
        var values = new double[request.Targets.Count];
        int forwards = 0, backwards = 0;
        void Collect(int k, Tensor gradient, Tensor embeddings, double value)
        {
            using var scope = NewDisposeScope();
            scores[k] = ScorePostprocessing.Finish(ScorePostprocessing.Reduce(ScoreDimensions(gradient, embeddings), options.Reduction), options, request.Ids.Count);
            values[k] = value;
        }

        var layer = ActivationLayer(model, options);
        if (options.GradientStrategy == GradientStrategy.SharedGraph)
            (forwards, backwards) = SharedGraph(model, request, evaluator, layer, Collect);
        else
            (forwards, backwards) = BatchedChunks(model, request, evaluator, options.ChunkSize, layer, Collect);
        return new AttributionResult(Name, request.Targets, scores, values, forwards, backwards);
    }

    // One forward over the prefix the last target needs, graph kept; one backward per target,
    // to the input embeddings (or the chosen layer's output) only (the weights take no gradients).
    private static (int, int) SharedGraph(LanguageModel model, AttributionRequest request, TargetEvaluator evaluator, int? layer, Action<int, Tensor, Tensor, double> collect)
    {
        using var scope = NewDisposeScope();
        using var _ = enable_grad();
        int first = request.Targets.Min(t => t.Position), last = request.Targets.Max(t => t.Position);
        var embeddings = MethodTensors.EmbedPrefix(model, request.Ids, last).requires_grad_(true); // [1, L, C]
        using var output = model.Forward(new ForwardRequest(embeddings, TorchScalars.Range(last, model.Device).unsqueeze(0), LogitsFrom: first - 1, OutputHiddenStates: layer is not null));
        var activation = layer is int l ? output.HiddenStates![l + 1] : embeddings;                     // [1, L, C]
        var rows = output.Logits[0].index_select(0, MethodTensors.TargetRows(request, first, model.Device)); // [K, V]
        var f = evaluator.Evaluate(rows, Enumerable.Range(0, request.Targets.Count).ToArray());                                                       // [K]
        var fValues = f.detach().to(ScalarType.Float64).cpu().data<double>().ToArray();
        for (int k = 0; k < request.Targets.Count; k++)
        {
            request.CancellationToken.ThrowIfCancellationRequested();
            using var step = NewDisposeScope();
            var gradient = torch.autograd.grad([f[k]], [activation], retain_graph: k < request.Targets.Count - 1)[0]; // [1, L, C]
            collect(k, gradient[0], activation[0].detach(), fValues[k]);
        }
        return (1, request.Targets.Count);
    }

    // Targets in chunks; each row is one target's own prefix, right-padded (causality keeps the
    // padding from reaching it); one backward of the chunk's sum gives every row its gradient.
    private static (int, int) BatchedChunks(LanguageModel model, AttributionRequest request, TargetEvaluator evaluator, int chunkSize, int? layer, Action<int, Tensor, Tensor, double> collect)
    {
        var order = Enumerable.Range(0, request.Targets.Count).OrderBy(k => request.Targets[k].Position).ToArray();
        int chunks = 0;
        foreach (var chunk in order.Chunk(chunkSize))
        {
            request.CancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            using var _ = enable_grad();
            int length = chunk.Max(k => request.Targets[k].Position);
            var ids = new long[chunk.Length * length];
            for (int r = 0; r < chunk.Length; r++)
                for (int j = 0; j < request.Targets[chunk[r]].Position; j++)
                    ids[r * length + j] = request.Ids[j];
            var embeddings = model.Embed(tensor(ids, [chunk.Length, length], device: model.Device)).detach().requires_grad_(true); // [R, L, C]
            var positions = TorchScalars.Range(length, model.Device).unsqueeze(0).expand(chunk.Length, -1);
            using var output = model.Forward(new ForwardRequest(embeddings, positions, OutputHiddenStates: layer is not null));
            var activation = layer is int l ? output.HiddenStates![l + 1] : embeddings;                 // [R, L, C]
            var rows = output.Logits.index([TorchScalars.Range(chunk.Length, model.Device), tensor(chunk.Select(k => (long)request.Targets[k].Position - 1).ToArray(), device: model.Device)]); // [R, V]
            var f = evaluator.Evaluate(rows, chunk);
            var gradient = torch.autograd.grad([f.sum()], [activation])[0];
            var fValues = f.detach().to(ScalarType.Float64).cpu().data<double>().ToArray();
            for (int r = 0; r < chunk.Length; r++)
                collect(chunk[r], gradient[r], activation[r].detach(), fValues[r]);
            chunks++;
        }
        return (chunks, chunks);
    }
}
