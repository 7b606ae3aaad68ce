using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Attribution.Methods;

/// <summary>The inputs and outputs every method takes the same way: the embedded prefix and the target rows.</summary>
internal static class MethodTensors
{
    /// <summary>Embeddings of the first <paramref name="length"/> ids as a fresh leaf, <c>[1, L, C]</c>.</summary>
    public static Tensor EmbedPrefix(LanguageModel model, IReadOnlyList<int> ids, int length) =>
        model.Embed(tensor(ids.Take(length).Select(i => (long)i).ToArray(), device: model.Device).unsqueeze(0)).detach();

    /// <summary><see cref="AttributionOptions.Layer"/> as a layer index (negative counts from the end), or null when none is set; the layer methods' one reading of it.</summary>
    public static int? ChosenLayer(LanguageModel model, AttributionOptions options)
    {
        if (options.Layer is not int chosen)
            return null;
        int layers = model.Config.NumLayers, layer = chosen < 0 ? layers + chosen : chosen;
        return layer >= 0 && layer < layers ? layer : throw new MirageException($"Layer {chosen} is outside the model's {layers} layers.");
    }

    /// <summary>
    /// For logits computed from position <paramref name="first"/> - 1 on (<c>LogitsFrom</c>),
    /// the index of each target's predicting row along the sequence dimension, <c>[K]</c>.
    /// </summary>
    public static Tensor TargetRows(AttributionRequest request, int first, Device device) =>
        tensor(request.Targets.Select(t => (long)(t.Position - first)).ToArray(), device: device);
}
