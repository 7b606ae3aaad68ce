using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// Where a checkpoint's weights come from, whatever the file format: every tensor by its Hugging
/// Face name with its torch shape, read on demand into the compute dtype. Safetensors files and
/// GGUF files (dequantized, renamed and reordered to the runtime's layout) both provide it, so
/// one loader fills the model from either.
/// </summary>
public interface ICheckpointTensors : IDisposable
{
    /// <summary>The file, for error messages.</summary>
    string Path { get; }

    /// <summary>Torch shape of each tensor, by Hugging Face name.</summary>
    IReadOnlyDictionary<string, long[]> Shapes { get; }

    /// <summary>Reads one tensor as <paramref name="dtype"/> on <paramref name="device"/>; the caller disposes it.</summary>
    Tensor Read(string name, ScalarType? dtype = null, Device? device = null);
}
