using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace Mirage.Core.Models.Safetensors;

/// <summary>Writes tensors in the safetensors layout (sorted names, header padded to 8 bytes, no gaps).</summary>
public static class SafetensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/>, each in its own element type. The
    /// file is written beside the target and then moved over it, so a model that has the old file
    /// mapped keeps reading the old bytes instead of losing its pages.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = tensors.OrderBy(t => t.Key, StringComparer.Ordinal).ToList();
        var header = new Dictionary<string, object>(StringComparer.Ordinal);
        if (metadata is { Count: > 0 })
            header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, tensor) in ordered)
        {
            long length = tensor.NumberOfElements * tensor.ElementSize;
            header[name] = new { dtype = SafetensorsDType.NameOf(tensor.dtype), shape = tensor.shape, data_offsets = new[] { offset, offset + length } };
            offset += length;
        }

        var headerBytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (headerBytes.Length + 7) / 8 * 8;
        var partial = $"{path}.{Guid.NewGuid():N}.partial";
        try
        {
            using (var stream = new FileStream(partial, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(BitConverter.GetBytes((ulong)padded));
                stream.Write(headerBytes);
                for (int i = headerBytes.Length; i < padded; i++)
                    stream.WriteByte((byte)' ');
                foreach (var (_, tensor) in ordered)
                {
                    using var cpu = tensor.detach().cpu().contiguous();
                    stream.Write(cpu.bytes);
                }
            }
            File.Move(partial, path, overwrite: true);
        }
        finally
        {
            File.Delete(partial);
        }
    }
}
