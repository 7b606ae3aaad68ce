using Mirage.Core.Attribution.StepFunctions;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution;

/// <summary>
/// Maps the logits predicting some targets (<c>[K, V]</c>, possibly with a graph) to the contrast
/// logits for those targets; <paramref name="targetIndices"/> says which targets the rows are.
/// </summary>
public delegate Tensor ContrastLogitsProvider(Tensor logits, IReadOnlyList<int> targetIndices);

/// <summary>What to explain: targets in one input sequence, through one step function.</summary>
/// <param name="Ids">The full input (prompt then answer), token ids.</param>
/// <param name="Targets">The steps to explain.</param>
/// <param name="StepFunction">The step function's registered name.</param>
/// <param name="Options">Method options.</param>
/// <param name="ContrastLogits">Where contrastive step functions take their contrast distribution; null uses the same logits.</param>
/// <param name="KlDirection">Direction for <c>kl_divergence</c>.</param>
/// <param name="CancellationToken">Checked between batches and targets, so long attributions stop early.</param>
public sealed record AttributionRequest(
    IReadOnlyList<int> Ids,
    IReadOnlyList<AttributionTarget> Targets,
    string StepFunction = "log_probability",
    AttributionOptions? Options = null,
    ContrastLogitsProvider? ContrastLogits = null,
    KlDirection KlDirection = KlDirection.ContextToNoContext,
    CancellationToken CancellationToken = default);
