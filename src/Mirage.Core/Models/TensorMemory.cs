using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>Direct access to a tensor's CPU memory, for writers that fill it in place (dequantization, llama.cpp's logits).</summary>
internal static class TensorMemory
{
    /// <summary>The values of a contiguous float32 CPU tensor, valid while the tensor lives.</summary>
    public static unsafe Span<float> Floats(Tensor tensor)
    {
        if (tensor.dtype != ScalarType.Float32 || tensor.device_type != TorchSharp.DeviceType.CPU || !tensor.is_contiguous())
            throw new ArgumentException("Expected a contiguous float32 CPU tensor.", nameof(tensor));
        return new((float*)tensor.storage<float>().data_ptr() + tensor.storage_offset(), checked((int)tensor.NumberOfElements));
    }
}
