using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// One teacher-forced forward pass over a prompt and its continuation. The caller owns the
/// tensors; when gradients were asked for, <see cref="Embeddings"/> is a leaf that requires
/// gradients, so <c>backward()</c> on any function of <see cref="Logits"/> fills its <c>grad</c>.
/// </summary>
/// <param name="Logits">Logits predicting each continuation token (row i predicts token i), float32
/// (float64 for a float64 model), <c>[1, N, V]</c>.</param>
/// <param name="Embeddings">The input embeddings <c>[1, T, C]</c>.</param>
/// <param name="ContinuationLogProbs">log p(continuation token | everything before), <c>[N]</c>, in the logits' dtype.</param>
/// <param name="PromptLength">Number of prompt tokens (the continuation starts at this position).</param>
public sealed record TeacherForcedPass(Tensor Logits, Tensor Embeddings, Tensor ContinuationLogProbs, int PromptLength) : IDisposable
{
    /// <inheritdoc />
    public void Dispose()
    {
        Logits.Dispose();
        Embeddings.Dispose();
        ContinuationLogProbs.Dispose();
    }
}
