using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution.Methods;

/// <summary>
/// Occlusion / leave-one-out: f(x) - f(x with a token, or a span, replaced by the zero embedding).
/// Occluded inputs run as batches (<see cref="AttributionOptions.ChunkSize"/> rows); every target
/// is read from the same passes. A span's score is spread evenly over its positions, so span sums
/// equal the span's effect.
/// </summary>
public sealed class OcclusionMethod : IAttributionMethod
{
    /// <inheritdoc />
    public string Name => "occlusion";

    /// <inheritdoc />
    public long TokenPasses(int length, int targets, AttributionOptions options) => (long)((options.OcclusionSpans?.Count ?? length) + 1) * length;

    /// <inheritdoc />
    public AttributionResult Attribute(LanguageModel model, AttributionRequest request, TargetEvaluator evaluator)
    {
        var options = request.Options ?? new AttributionOptions();
        int first = request.Targets.Min(t => t.Position), last = request.Targets.Max(t => t.Position);
        var spans = options.OcclusionSpans ?? Enumerable.Range(0, last).Select(j => (j, j + 1)).ToList();
        foreach (var (start, end) in spans)
            if (start < 0 || end <= start || end > request.Ids.Count)
                throw new MirageException($"Occlusion span [{start}, {end}) is not inside the {request.Ids.Count}-token input.");

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var all = Enumerable.Range(0, request.Targets.Count).ToArray();
        var rowsAt = MethodTensors.TargetRows(request, first, model.Device);
        var input = MethodTensors.EmbedPrefix(model, request.Ids, last); // [1, L, C]
        var positions = TorchScalars.Range(last, model.Device).unsqueeze(0);

        Tensor Values(Tensor embeddings) // [R, L, C] -> [R, K]
        {
            using var output = model.Forward(new ForwardRequest(embeddings, positions.expand(embeddings.shape[0], -1), LogitsFrom: first - 1));
            var logits = output.Logits.index_select(1, rowsAt);                  // [R, K, V]
            return evaluator.Evaluate(logits.flatten(0, 1), Enumerable.Repeat(all, (int)embeddings.shape[0]).SelectMany(x => x).ToArray())
                .view(embeddings.shape[0], all.Length);
        }

        var reference = Values(input)[0];                                        // [K]
        var scores = zeros(request.Targets.Count, request.Ids.Count, ScalarType.Float64);
        int passes = 1;
        foreach (var chunk in spans.Chunk(options.ChunkSize))
        {
            request.CancellationToken.ThrowIfCancellationRequested();
            using var chunkScope = NewDisposeScope();
            var batch = input.expand(chunk.Length, -1, -1).clone();             // [R, L, C]
            for (int r = 0; r < chunk.Length; r++)
            {
                var (start, end) = chunk[r];
                if (start < last)
                    batch[r].narrow(0, start, Math.Min(end, last) - start).zero_();
            }
            var effect = (reference.unsqueeze(0) - Values(batch)).to(ScalarType.Float64); // [R, K]
            for (int r = 0; r < chunk.Length; r++)
            {
                var (start, end) = chunk[r];
                scores.narrow(1, start, end - start).PlusInPlace(effect[r].unsqueeze(1).DividedBy(end - start));
            }
            passes++;
        }
        var values = reference.to(ScalarType.Float64).cpu().data<double>().ToArray();
        var rows = Enumerable.Range(0, request.Targets.Count).Select(k => ScorePostprocessing.Finish(scores[k], options, request.Ids.Count)).ToArray();
        return new AttributionResult(Name, request.Targets, rows, values, passes, BackwardPasses: 0);
    }
}
