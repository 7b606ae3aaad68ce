using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution.Methods;

/// <summary>The inputs and outputs every method takes the same way: the embedded prefix and the target rows.</summary>
internal static class MethodTensors
{
    /// <summary>Embeddings of the first <paramref name="length"/> ids as a fresh leaf, <c>[1, L, C]</c>.</summary>
    public static Tensor EmbedPrefix(LanguageModel model, IReadOnlyList<int> ids, int length) =>
        model.Embed(tensor(ids.Take(length).Select(i => (long)i).ToArray(), device: model.Device).unsqueeze(0)).detach();

    /// <summary>
    /// For logits computed from position <paramref name="first"/> - 1 on (<c>LogitsFrom</c>),
    /// the index of each target's predicting row along the sequence dimension, <c>[K]</c>.
    /// </summary>
    public static Tensor TargetRows(AttributionRequest request, int first, Device device) =>
        tensor(request.Targets.Select(t => (long)(t.Position - first)).ToArray(), device: device);
}
