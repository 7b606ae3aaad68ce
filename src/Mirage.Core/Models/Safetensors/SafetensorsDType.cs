using TorchSharp;

namespace Mirage.Core.Models.Safetensors;

/// <summary>The element types a safetensors header may name, with their sizes and torch equivalents.</summary>
public static class SafetensorsDType
{
    private static readonly Dictionary<string, (int Size, torch.ScalarType Type)> Known = new()
    {
        ["F64"] = (8, torch.ScalarType.Float64),
        ["F32"] = (4, torch.ScalarType.Float32),
        ["F16"] = (2, torch.ScalarType.Float16),
        ["BF16"] = (2, torch.ScalarType.BFloat16),
        ["I64"] = (8, torch.ScalarType.Int64),
        ["I32"] = (4, torch.ScalarType.Int32),
        ["I16"] = (2, torch.ScalarType.Int16),
        ["I8"] = (1, torch.ScalarType.Int8),
        ["U8"] = (1, torch.ScalarType.Byte),
        ["BOOL"] = (1, torch.ScalarType.Bool),
    };

    /// <summary>All dtype names this reader accepts.</summary>
    public static IReadOnlyCollection<string> Names => Known.Keys;

    /// <summary>Looks up a header dtype name; false when the name is not a known safetensors dtype.</summary>
    public static bool TryGet(string name, out int elementSize, out torch.ScalarType scalarType)
    {
        var found = Known.TryGetValue(name, out var entry);
        (elementSize, scalarType) = entry;
        return found;
    }

    /// <summary>The header name for a torch element type (for writing files).</summary>
    public static string NameOf(torch.ScalarType type) =>
        Known.FirstOrDefault(kv => kv.Value.Type == type).Key
        ?? throw new MirageException($"Tensors of type {type} cannot be written to safetensors; supported: {string.Join(", ", Known.Keys)}.");
}
