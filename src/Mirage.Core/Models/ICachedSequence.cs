using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// One token sequence decoded with a KV cache, on whichever engine runs the model: tokens are
/// appended after the cached ones, logits come back only for the positions asked for, and the cache
/// can be cut back to a prefix that several continuations share (passage ablation runs each ablated
/// prompt only from where it differs). Not thread-safe; hold the model's compute gate.
/// </summary>
public interface ICachedSequence : IDisposable
{
    /// <summary>How many tokens the cache holds.</summary>
    int Length { get; }

    /// <summary>The most tokens it can hold.</summary>
    int Capacity { get; }

    /// <summary>
    /// Runs <paramref name="ids"/> at positions <see cref="Length"/> on, caching them, and returns the
    /// next-token logits predicted at <paramref name="ids"/>[<paramref name="logitsFrom"/>..],
    /// <c>[ids.Count - logitsFrom, V]</c> in float32 (float64 for a float64 model; the caller owns them),
    /// or null without <paramref name="logitsFrom"/> (the cache is only filled).
    /// </summary>
    Tensor? Append(IReadOnlyList<int> ids, int? logitsFrom);

    /// <summary>Keeps only the first <paramref name="length"/> cached tokens; the next <see cref="Append"/> continues from there.</summary>
    void Rewind(int length);
}
