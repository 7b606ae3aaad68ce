using TorchSharp;

namespace Mirage.Core.Models.Safetensors;

/// <summary>One tensor's entry in a safetensors header, already checked against the file.</summary>
/// <param name="Name">The tensor's name in the checkpoint, e.g. <c>model.layers.0.mlp.up_proj.weight</c>.</param>
/// <param name="DType">The header's dtype name (F32, BF16, F16, ...).</param>
/// <param name="ScalarType">The torch element type of the stored data.</param>
/// <param name="Shape">The tensor's shape.</param>
/// <param name="Begin">Start of the data, in bytes from the start of the data section.</param>
/// <param name="End">End of the data (exclusive), in bytes from the start of the data section.</param>
public sealed record SafetensorsTensorInfo(string Name, string DType, torch.ScalarType ScalarType, long[] Shape, long Begin, long End)
{
    /// <summary>The number of bytes the tensor occupies.</summary>
    public long ByteLength => End - Begin;

    /// <summary>The number of values.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}
