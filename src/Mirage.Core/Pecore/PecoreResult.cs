namespace Mirage.Core.Pecore;

/// <summary>What PECoRe found for one answer.</summary>
/// <param name="CtiScores">The CTI metric per answer token.</param>
/// <param name="Selected">Whether each answer token was selected as context-sensitive.</param>
/// <param name="Threshold">The selection threshold that was applied to |score|.</param>
/// <param name="ContrastIds">Per answer token, the no-context model's greedy choice given the same answer prefix.</param>
/// <param name="ContextLogProbs">Per answer token, its log-probability with the context.</param>
/// <param name="NoContextLogProbs">Per answer token, its log-probability without the context.</param>
/// <param name="CciScores">Per selected answer token (by index), one score per with-context prompt position.</param>
/// <param name="CciTargetValues">Per selected answer token, the CCI target's value.</param>
/// <param name="ForwardPasses">Forward passes run (two for CTI, plus CCI's).</param>
/// <param name="BackwardPasses">Backward passes run (CCI).</param>
/// <param name="CtiTime">Time of the two teacher-forced passes and the metric.</param>
/// <param name="CciTime">Time of the attribution.</param>
public sealed record PecoreResult(
    IReadOnlyList<double> CtiScores,
    IReadOnlyList<bool> Selected,
    double Threshold,
    IReadOnlyList<int> ContrastIds,
    IReadOnlyList<double> ContextLogProbs,
    IReadOnlyList<double> NoContextLogProbs,
    IReadOnlyDictionary<int, float[]> CciScores,
    IReadOnlyDictionary<int, double> CciTargetValues,
    int ForwardPasses,
    int BackwardPasses,
    TimeSpan CtiTime,
    TimeSpan CciTime);
