using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>The inputs of one forward pass over embeddings (so gradient methods can feed their own).</summary>
/// <param name="Embeddings">Input embeddings <c>[B, T, C]</c> in the compute dtype.</param>
/// <param name="Positions">Rotary position of each input token, <c>[B, T]</c> int64.</param>
/// <param name="KeyMask">Which key slots (cached then new, <c>[B, S]</c> bool) are real tokens rather than padding; null when none are padding.</param>
/// <param name="Cache">The KV cache to read from and append to, or null for a stateless pass.</param>
/// <param name="LogitsFrom">Compute logits only from this input position on (the LM head over a large
/// vocabulary costs as much as several layers, and scoring or generation needs only the last positions).</param>
/// <param name="OutputAttentions">Return attention weights (uses the explicit softmax path).</param>
/// <param name="OutputHiddenStates">Return the residual stream after the embedding and each layer.</param>
/// <param name="Decompose">Take each layer apart for information-flow routes
/// (<see cref="LayerDecomposition"/>); uses the explicit attention path.</param>
/// <param name="StartLayer">Start at this decoder layer: <paramref name="Embeddings"/> is then the
/// residual stream entering it (layer attribution runs the rest of the model from a layer's output).</param>
public sealed record ForwardRequest(
    Tensor Embeddings,
    Tensor Positions,
    Tensor? KeyMask = null,
    KvCache? Cache = null,
    int LogitsFrom = 0,
    bool OutputAttentions = false,
    bool OutputHiddenStates = false,
    bool Decompose = false,
    int StartLayer = 0);
