using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution.Methods;

/// <summary>
/// Attention weights from the position that predicts each target to every input position, combined
/// over layers and heads (mean by default; one layer, one head, or max as options). One forward pass.
/// </summary>
public sealed class AttentionMethod : IAttributionMethod
{
    /// <inheritdoc />
    public string Name => "attention";

    /// <inheritdoc />
    public long TokenPasses(int length, int targets, AttributionOptions options) => length;

    /// <inheritdoc />
    public AttributionResult Attribute(LanguageModel model, AttributionRequest request, TargetEvaluator evaluator)
    {
        var options = request.Options ?? new AttributionOptions();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int first = request.Targets.Min(t => t.Position), last = request.Targets.Max(t => t.Position);
        var input = MethodTensors.EmbedPrefix(model, request.Ids, last);
        using var output = model.Forward(new ForwardRequest(input, TorchScalars.Range(last, model.Device).unsqueeze(0), LogitsFrom: first - 1, OutputAttentions: true));

        var layers = output.Attentions!;
        var chosen = options.AttentionLayer is int layer
            ? [layers[layer < 0 ? layers.Count + layer : layer]]
            : layers;
        var stacked = stack(chosen.Select(a => a[0]).ToArray());                 // [L', H, T, T]
        if (options.AttentionHead is int head)
            stacked = stacked.narrow(1, head, 1);                                  // [L', 1, T, T]
        var flat = stacked.flatten(0, 1);                                         // [L'H', T, T]
        var combined = options.AttentionAggregation == AttentionAggregation.Max ? flat.amax([0L]) : flat.mean([0L]); // [T, T]

        var queries = tensor(request.Targets.Select(t => (long)t.Position - 1).ToArray(), device: model.Device);
        var rows = combined.index_select(0, queries);                             // [K, T]
        var logits = output.Logits[0].index_select(0, MethodTensors.TargetRows(request, first, model.Device));
        var values = evaluator.Evaluate(logits, Enumerable.Range(0, request.Targets.Count).ToArray()).to(ScalarType.Float64).cpu().data<double>().ToArray();
        var scores = Enumerable.Range(0, request.Targets.Count).Select(k => ScorePostprocessing.Finish(rows[k], options, request.Ids.Count)).ToArray();
        return new AttributionResult(Name, request.Targets, scores, values, ForwardPasses: 1, BackwardPasses: 0);
    }
}
