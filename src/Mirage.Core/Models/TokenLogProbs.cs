using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// Per-row values of next-token logits <c>[N, V]</c>, a few rows at a time: with a vocabulary of
/// 150k the softmax temporaries of 60 answer rows at once take several times the logits' own size,
/// and they set the peak memory of a citation on a small model.
/// </summary>
internal static class TokenLogProbs
{
    // Values per step: 4 MiB of float32 per temporary. Small enough that glibc serves them from its
    // heap and reuses them, where temporaries of tens of MiB would each be mapped and leave the heap grown.
    private const long StepValues = 1L << 20;

    /// <summary>log p(target_i | row i) for each row, <c>[N]</c> in the logits' dtype.</summary>
    public static Tensor Of(Tensor logits, Tensor targets) =>
        ByRows(logits, (start, count) => logits.narrow(0, start, count).log_softmax(-1).gather(1, targets.narrow(0, start, count).unsqueeze(1)).squeeze(1));

    /// <summary>Concatenates <paramref name="rows"/>(start, count) over the rows of <paramref name="logits"/>, each step's temporaries freed before the next.</summary>
    public static Tensor ByRows(Tensor logits, Func<long, long, Tensor> rows)
    {
        long count = logits.shape[0], step = Math.Max(1, StepValues / Math.Max(1, logits.shape[1]));
        var parts = new List<Tensor>();
        using var scope = NewDisposeScope();
        for (long start = 0; start < count; start += step)
        {
            using var stepScope = NewDisposeScope();
            parts.Add(rows(start, Math.Min(step, count - start)).MoveToOuterDisposeScope());
        }
        return cat(parts, 0).MoveToOuterDisposeScope();
    }
}
