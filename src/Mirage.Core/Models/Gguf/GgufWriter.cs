using System.Buffers.Binary;
using System.Text;

namespace Mirage.Core.Models.Gguf;

/// <summary>A tensor to write: its values (row-major, torch order), torch shape, and storage type.</summary>
/// <param name="Name">The GGUF tensor name.</param>
/// <param name="Values">The values, row-major.</param>
/// <param name="Shape">The torch shape, outermost first (GGUF stores it reversed).</param>
/// <param name="Type">F32, F16, BF16 or Q8_0.</param>
public sealed record GgufTensor(string Name, float[] Values, long[] Shape, GgufType Type)
{
    /// <summary>This tensor as blocks, encoded when written.</summary>
    public GgufTensorData ToData()
    {
        long count = Shape.Aggregate(1L, (a, b) => a * b);
        if (count != Values.Length)
            throw new ArgumentException($"Tensor '{Name}': shape [{string.Join(", ", Shape)}] holds {count} values, not {Values.Length}.");
        return new GgufTensorData(Name, Shape, Type, () => GgufWriter.Quantize(Type, Values));
    }
}

/// <summary>
/// A tensor whose bytes are made when the writer reaches it, so a file is written one tensor at a
/// time (a converted model, or blocks of any type made elsewhere).
/// </summary>
/// <param name="Name">The GGUF tensor name.</param>
/// <param name="Shape">The torch shape, outermost first.</param>
/// <param name="Type">The storage type of the bytes.</param>
/// <param name="Bytes">Makes the tensor's bytes: whole blocks of <paramref name="Type"/>, row-major.</param>
public sealed record GgufTensorData(string Name, long[] Shape, GgufType Type, Func<byte[]> Bytes)
{
    /// <summary>How many bytes the tensor takes in the file.</summary>
    public long ByteLength
    {
        get
        {
            var info = GgufTypeInfo.Of(Type);
            long count = Shape.Aggregate(1L, (a, b) => a * b);
            if (Shape.Length == 0 || Shape[^1] % info.BlockSize != 0)
                throw new ArgumentException($"Tensor '{Name}': rows of {(Shape.Length == 0 ? 0 : Shape[^1])} values do not make whole {Type} blocks of {info.BlockSize}.");
            return count / info.BlockSize * info.BlockBytes;
        }
    }
}

/// <summary>
/// Writes GGUF version 3 files: typed metadata, tensor infos and 32-byte aligned data, in F32,
/// F16, BF16 or Q8_0 (quantized as ggml's reference quantizer does). Metadata values map from
/// .NET types: string, bool, byte (uint8), int (int32), uint (uint32), long (int64), ulong
/// (uint64), float (float32), double (float64), and arrays of string, int, uint or float.
/// </summary>
public static class GgufWriter
{
    private const int Alignment = 32;

    /// <summary>Writes <paramref name="tensors"/> with <paramref name="metadata"/> to <paramref name="path"/>.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, object>> metadata, IReadOnlyList<GgufTensor> tensors) =>
        WriteBlocks(path, metadata, tensors.Select(t => t.ToData()).ToList());

    /// <summary>Writes <paramref name="tensors"/> with <paramref name="metadata"/> to <paramref name="path"/>, making each tensor's bytes only when it is written.</summary>
    public static void WriteBlocks(string path, IEnumerable<KeyValuePair<string, object>> metadata, IReadOnlyList<GgufTensorData> tensors)
    {
        var meta = metadata.ToList();
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var writer = new BinaryWriter(stream, Encoding.UTF8);
        writer.Write(0x46554747u);
        writer.Write(3u);
        writer.Write((ulong)tensors.Count);
        writer.Write((ulong)meta.Count);
        foreach (var (key, value) in meta)
        {
            WriteString(writer, key);
            WriteValue(writer, value, key);
        }
        long offset = 0;
        foreach (var tensor in tensors)
        {
            WriteString(writer, tensor.Name);
            writer.Write((uint)tensor.Shape.Length);
            foreach (var dimension in tensor.Shape.Reverse())
                writer.Write((ulong)dimension);
            writer.Write((uint)tensor.Type);
            writer.Write((ulong)offset);
            offset = Align(offset + tensor.ByteLength);
        }
        Pad(writer);
        foreach (var tensor in tensors)
        {
            var bytes = tensor.Bytes();
            if (bytes.Length != tensor.ByteLength)
                throw new ArgumentException($"Tensor '{tensor.Name}': {bytes.Length} bytes were made; its shape and type take {tensor.ByteLength}.");
            writer.Write(bytes);
            Pad(writer);
        }
    }

    /// <summary>Values as blocks of <paramref name="type"/> (F32, F16, BF16 or Q8_0).</summary>
    public static byte[] Quantize(GgufType type, ReadOnlySpan<float> values)
    {
        switch (type)
        {
            case GgufType.F32:
                return System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).ToArray();
            case GgufType.F16:
            case GgufType.BF16:
                var halves = new byte[values.Length * 2];
                for (int i = 0; i < values.Length; i++)
                    BinaryPrimitives.WriteUInt16LittleEndian(halves.AsSpan(2 * i), type == GgufType.F16 ? BitConverter.HalfToUInt16Bits((Half)values[i]) : BFloat16(values[i]));
                return halves;
            case GgufType.Q8_0:
                if (values.Length % 32 != 0)
                    throw new MirageException($"Q8_0 needs rows that are multiples of 32 values; got {values.Length}.");
                var blocks = new byte[values.Length / 32 * 34];
                for (int b = 0; b < values.Length / 32; b++)
                    Q8Block(values.Slice(b * 32, 32), blocks.AsSpan(b * 34, 34));
                return blocks;
            default:
                throw new MirageException($"Mirage writes F32, F16, BF16 and Q8_0 GGUF tensors, not {type}; quantize further with llama.cpp.");
        }
    }

    // ggml's quantize_row_q8_0_ref: scale by the largest magnitude to +-127, round half away from zero.
    private static void Q8Block(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0;
        foreach (var v in x)
            amax = MathF.Max(amax, MathF.Abs(v));
        float d = amax / 127, id = d != 0 ? 1 / d : 0;
        BinaryPrimitives.WriteUInt16LittleEndian(y, BitConverter.HalfToUInt16Bits((Half)d));
        for (int j = 0; j < 32; j++)
            y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    // Round to nearest even, as ggml's fp32 -> bf16 (NaN kept quiet).
    private static ushort BFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7fffffff) > 0x7f800000)
            return (ushort)((bits >> 16) | 64);
        return (ushort)((bits + (0x7fff + ((bits >> 16) & 1))) >> 16);
    }

    private static long Align(long offset) => (offset + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter writer)
    {
        while (writer.BaseStream.Position % Alignment != 0)
            writer.Write((byte)0);
    }

    private static void WriteString(BinaryWriter writer, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    private static void WriteValue(BinaryWriter writer, object value, string key)
    {
        switch (value)
        {
            case byte b: writer.Write(0u); writer.Write(b); break;
            case int i: writer.Write(5u); writer.Write(i); break;
            case uint u: writer.Write(4u); writer.Write(u); break;
            case float f: writer.Write(6u); writer.Write(f); break;
            case bool flag: writer.Write(7u); writer.Write((byte)(flag ? 1 : 0)); break;
            case string s: writer.Write(8u); WriteString(writer, s); break;
            case ulong ul: writer.Write(10u); writer.Write(ul); break;
            case long l: writer.Write(11u); writer.Write(l); break;
            case double d: writer.Write(12u); writer.Write(d); break;
            case string[] strings: WriteArray(writer, 8u, strings, s => WriteString(writer, s)); break;
            case int[] ints: WriteArray(writer, 5u, ints, writer.Write); break;
            case uint[] uints: WriteArray(writer, 4u, uints, writer.Write); break;
            case float[] floats: WriteArray(writer, 6u, floats, writer.Write); break;
            default: throw new ArgumentException($"Metadata '{key}' has a {value.GetType().Name}, which GGUF cannot store.");
        }
    }

    private static void WriteArray<T>(BinaryWriter writer, uint elementType, T[] items, Action<T> write)
    {
        writer.Write(9u);
        writer.Write(elementType);
        writer.Write((ulong)items.Length);
        foreach (var item in items)
            write(item);
    }
}
