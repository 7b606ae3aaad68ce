using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution.Methods;

/// <summary>
/// Value zeroing (Mohebbi et al., 2023; Inseq's <c>value_zeroing</c>): how much a layer's output at
/// the position predicting a target changes when one input token's value vectors are zeroed in every
/// head, as <c>1 - cos(clean, zeroed)</c>, normalised to sum to 1 over the inputs. As in Inseq each
/// layer is zeroed on its clean input and one layer is read (<see cref="AttributionOptions.Layer"/>;
/// the last by default, Inseq's default). One decomposed forward pass; then per target, the layer's
/// attention output without each source (its parts, since zeroing a value leaves the weights) through
/// the rest of the layer: no forward pass per input token.
/// </summary>
public sealed class ValueZeroingMethod : IAttributionMethod
{
    /// <inheritdoc />
    public string Name => "value_zeroing";

    /// <inheritdoc />
    public long TokenPasses(int length, int targets, AttributionOptions options) => length + (long)length * targets;

    /// <inheritdoc />
    public AttributionResult Attribute(LanguageModel model, AttributionRequest request, TargetEvaluator evaluator)
    {
        var options = request.Options ?? new AttributionOptions();
        int layer = MethodTensors.ChosenLayer(model, options) ?? model.Config.NumLayers - 1;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int first = request.Targets.Min(t => t.Position), last = request.Targets.Max(t => t.Position);
        var input = MethodTensors.EmbedPrefix(model, request.Ids, last);
        using var output = model.Forward(new ForwardRequest(input, TorchScalars.Range(last, model.Device).unsqueeze(0), LogitsFrom: first - 1, Decompose: true));
        var clean = output.Decomposition![layer];
        var headValues = clean.HeadValues();

        var scores = new float[request.Targets.Count][];
        for (int k = 0; k < request.Targets.Count; k++)
        {
            request.CancellationToken.ThrowIfCancellationRequested();
            using var targetScope = NewDisposeScope();
            int position = request.Targets[k].Position - 1;
            var zeroed = model.ValueZeroedOutputs(layer, clean, headValues, position);          // [S', C]
            var whole = clean.ResidualPost[0, position].to(zeroed.dtype).unsqueeze(0);          // [1, C]
            var distance = nn.functional.cosine_similarity(zeroed, whole, dim: 1).to(ScalarType.Float64).neg().Plus(TorchScalars.One); // [S']
            var total = distance.sum();
            var row = total.item<double>() == 0 ? distance : distance.div(total);
            scores[k] = ScorePostprocessing.Finish(row, options, request.Ids.Count);
        }
        var logits = output.Logits[0].index_select(0, MethodTensors.TargetRows(request, first, model.Device));
        var values = evaluator.Evaluate(logits, Enumerable.Range(0, request.Targets.Count).ToArray()).to(ScalarType.Float64).cpu().data<double>().ToArray();
        return new AttributionResult(Name, request.Targets, scores, values, ForwardPasses: 1, BackwardPasses: 0);
    }
}
