namespace Mirage.Core.Attribution;

/// <summary>
/// Scores of every input position for every target step: <c>Scores[k][j]</c> explains target k
/// by input position j (positions at or after the target's own position score 0).
/// </summary>
/// <param name="Method">The method's name.</param>
/// <param name="Targets">The explained steps, in request order.</param>
/// <param name="Scores">One row per target, one column per input position.</param>
/// <param name="TargetValues">The step function's value for each target on the unmodified input.</param>
/// <param name="ForwardPasses">Forward passes run.</param>
/// <param name="BackwardPasses">Backward passes run.</param>
public sealed record AttributionResult(
    string Method,
    IReadOnlyList<AttributionTarget> Targets,
    IReadOnlyList<float[]> Scores,
    IReadOnlyList<double> TargetValues,
    int ForwardPasses,
    int BackwardPasses);
