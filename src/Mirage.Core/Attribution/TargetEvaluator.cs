using Mirage.Core.Attribution.StepFunctions;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution;

/// <summary>Applies a request's step function to the logits rows of some of its targets.</summary>
public sealed class TargetEvaluator(StepFunction function, AttributionRequest request)
{
    /// <summary>The request's targets.</summary>
    public IReadOnlyList<AttributionTarget> Targets => request.Targets;

    /// <summary>Step function values <c>[K]</c> for <paramref name="logits"/> <c>[K, V]</c>, row i predicting target <c>targetIndices[i]</c>.</summary>
    public Tensor Evaluate(Tensor logits, IReadOnlyList<int> targetIndices)
    {
        var device = logits.device;
        var targets = tensor(targetIndices.Select(i => (long)request.Targets[i].TokenId).ToArray(), device: device);
        var contrasts = tensor(targetIndices.Select(i => (long)(request.Targets[i].ContrastTokenId ?? request.Targets[i].TokenId)).ToArray(), device: device);
        return function(new StepFunctionArgs(logits, targets, contrasts, request.ContrastLogits?.Invoke(logits, targetIndices), request.KlDirection));
    }
}
