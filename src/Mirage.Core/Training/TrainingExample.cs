namespace Mirage.Core.Training;

/// <summary>One training sequence: a prompt (context, not trained on) and the target continuation.</summary>
public sealed record TrainingExample(int[] Prompt, int[] Target);

/// <summary>Where training stands, for progress display and resumption.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="Loss">Mean target-token loss of the last step.</param>
/// <param name="TokensPerSecond">Tokens processed per second over the last step.</param>
/// <param name="LearningRate">The learning rate used.</param>
public sealed record TrainingProgress(int Step, double Loss, double TokensPerSecond, double LearningRate);
