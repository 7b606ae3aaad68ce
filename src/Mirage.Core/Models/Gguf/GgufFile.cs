using System.IO.MemoryMappedFiles;
using System.Text;

namespace Mirage.Core.Models.Gguf;

/// <summary>A tensor in a GGUF file: its name, ggml dimensions (<c>ne[0]</c> first, the row length), type and where its bytes are.</summary>
/// <param name="Name">The tensor's name (<c>blk.0.attn_q.weight</c>).</param>
/// <param name="Dimensions">ggml's <c>ne</c>: innermost first, so <c>[cols, rows]</c> is a torch shape <c>[rows, cols]</c>.</param>
/// <param name="Type">The storage type.</param>
/// <param name="Offset">Offset of its bytes from the start of the data section.</param>
/// <param name="ByteLength">Its size in bytes.</param>
public sealed record GgufTensorInfo(string Name, long[] Dimensions, GgufType Type, long Offset, long ByteLength)
{
    /// <summary>The number of values.</summary>
    public long ElementCount => Dimensions.Aggregate(1L, (a, b) => a * b);

    /// <summary>The torch shape (outermost first).</summary>
    public long[] Shape => Dimensions.Reverse().ToArray();
}

/// <summary>
/// A GGUF file (llama.cpp's format, versions 2 and 3): typed metadata, tensor infos and aligned
/// tensor data, memory-mapped and never read whole into managed memory. Every count, length and
/// offset is checked against the file's size before it is used, so a damaged or hostile file is
/// refused with one <see cref="InvalidCheckpointException"/> naming the file and what is wrong.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    private const uint Magic = 0x46554747; // "GGUF"
    private const int MaxDimensions = 4;
    private const long MaxStringBytes = 1 << 24;
    // The largest real arrays are vocabularies and merge lists (~260,000 entries); each element
    // read becomes an object, so a count past this is refused rather than allocated.
    private const long MaxArrayElements = 1 << 22;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;

    private GgufFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* pointer, long length)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = pointer;
        Length = length;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The file's size in bytes.</summary>
    public long Length { get; }

    /// <summary>The format version (2 or 3).</summary>
    public int Version { get; private set; }

    /// <summary>Metadata by key: integers as <see cref="long"/> (or <see cref="ulong"/> above its range), floats as <see cref="double"/>, <see cref="bool"/>, <see cref="string"/>, or arrays of those.</summary>
    public IReadOnlyDictionary<string, object> Metadata { get; private set; } = new Dictionary<string, object>();

    /// <summary>The tensors, in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; private set; } = [];

    /// <summary>Where the data section starts.</summary>
    public long DataOffset { get; private set; }

    /// <summary>The data alignment (<c>general.alignment</c>, default 32).</summary>
    public int Alignment { get; private set; }

    /// <summary>Opens and checks a GGUF file.</summary>
    /// <exception cref="InvalidCheckpointException">Not GGUF, truncated, inconsistent, or with a type ggml does not define.</exception>
    public static GgufFile Open(string path)
    {
        if (!File.Exists(path))
            throw new InvalidCheckpointException($"GGUF file '{path}' does not exist.");
        ModelFiles.CheckRegular(path, what: "GGUF files");
        long length;
        using (var probe = File.OpenRead(path))
            length = probe.Length;
        if (length < 24)
            throw new InvalidCheckpointException($"'{path}' is {length} bytes, too short for a GGUF header.");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        var file = new GgufFile(path, map, view, pointer + view.PointerOffset, length);
        try
        {
            file.Parse();
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The bytes of a tensor, straight from the mapped file (valid until this file is disposed).</summary>
    public ReadOnlySpan<byte> Bytes(GgufTensorInfo tensor, long start = 0, int count = -1)
    {
        long from = DataOffset + tensor.Offset + start;
        int length = count < 0 ? checked((int)(tensor.ByteLength - start)) : count;
        if (start < 0 || from + length > DataOffset + tensor.Offset + tensor.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(start));
        return new ReadOnlySpan<byte>(_base + from, length);
    }

    /// <summary>A tensor's values as float32, dequantized from its storage type.</summary>
    /// <exception cref="InvalidCheckpointException">A type Mirage does not read, or a tensor too large for one array.</exception>
    public float[] Dequantize(GgufTensorInfo tensor)
    {
        if (tensor.ElementCount > Array.MaxLength || tensor.ByteLength > int.MaxValue)
            throw new InvalidCheckpointException($"'{Path}', tensor '{tensor.Name}': {tensor.ElementCount:N0} values are more than one read supports.");
        var values = new float[tensor.ElementCount];
        GgufDequantizer.Dequantize(tensor.Type, Bytes(tensor), values);
        return values;
    }

    /// <summary>
    /// A tensor's values as a new torch tensor of <paramref name="dtype"/> (its torch shape),
    /// dequantized a block of rows at a time straight into the tensor's memory (float32), or through
    /// one reused float32 chunk (other dtypes): no second copy of the tensor is ever made.
    /// </summary>
    /// <exception cref="InvalidCheckpointException">A type Mirage does not read.</exception>
    public TorchSharp.torch.Tensor Dequantize(GgufTensorInfo tensor, TorchSharp.torch.ScalarType dtype) => Dequantize(tensor, dtype, chunkValues: 1 << 20);

    // chunkValues: about how many values one step converts (whole rows; 4 MiB of float32 by default).
    internal TorchSharp.torch.Tensor Dequantize(GgufTensorInfo tensor, TorchSharp.torch.ScalarType dtype, long chunkValues)
    {
        var type = GgufTypeInfo.Of(tensor.Type);
        long rowValues = tensor.Dimensions[0], rows = tensor.ElementCount / rowValues, rowBytes = rowValues / type.BlockSize * type.BlockBytes;
        long chunkRows = Math.Clamp(chunkValues / rowValues, 1, rows);
        bool direct = dtype == TorchSharp.torch.ScalarType.Float32;
        var result = TorchSharp.torch.empty(tensor.Shape, dtype);
        try
        {
            using var flat = result.view(-1);
            using var staging = direct ? null : TorchSharp.torch.empty(chunkRows * rowValues, TorchSharp.torch.ScalarType.Float32);
            for (long row = 0; row < rows; row += chunkRows)
            {
                long count = Math.Min(chunkRows, rows - row);
                using var target = direct ? flat.narrow(0, row * rowValues, count * rowValues) : staging!.narrow(0, 0, count * rowValues);
                GgufDequantizer.Dequantize(tensor.Type, Bytes(tensor, row * rowBytes, checked((int)(count * rowBytes))), TensorMemory.Floats(target));
                if (!direct)
                {
                    using var destination = flat.narrow(0, row * rowValues, count * rowValues);
                    destination.copy_(target);
                }
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Tells the kernel this process is done with a tensor's bytes (Linux <c>madvise(MADV_DONTNEED)</c>
    /// on the whole pages they span): a model dequantized tensor by tensor then never holds the whole
    /// file's pages beside its own copy. The bytes stay readable; a later read maps them in again.
    /// </summary>
    public void Release(GgufTensorInfo tensor)
    {
        if (!OperatingSystem.IsLinux())
            return;
        long page = Environment.SystemPageSize;
        long start = DataOffset + tensor.Offset, end = start + tensor.ByteLength;
        // Only whole pages inside the tensor: its neighbours may still be read.
        long first = ((long)(_base + start) + page - 1) / page * page, last = (long)(_base + end) / page * page;
        if (last > first)
            _ = MAdvise((nint)first, (nuint)(last - first), DontNeed);
    }

    private const int DontNeed = 4; // MADV_DONTNEED

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static extern int MAdvise(nint address, nuint length, int advice);

    /// <summary>A metadata value of type <typeparamref name="T"/>, or <paramref name="fallback"/> when the key is absent.</summary>
    /// <exception cref="InvalidCheckpointException">The key holds another type.</exception>
    public T Get<T>(string key, T fallback)
    {
        if (!Metadata.TryGetValue(key, out var value))
            return fallback;
        return value switch
        {
            T typed => typed,
            long l when typeof(T) == typeof(int) && l is >= int.MinValue and <= int.MaxValue => (T)(object)(int)l,
            long l when typeof(T) == typeof(double) => (T)(object)(double)l,
            double d when typeof(T) == typeof(float) => (T)(object)(float)d,
            _ => throw new InvalidCheckpointException($"'{Path}': metadata '{key}' is {Describe(value)}, not {typeof(T).Name}."),
        };
    }

    private static string Describe(object value) => value switch
    {
        string => "a string",
        bool => "a boolean",
        long or ulong => "an integer",
        double => "a number",
        object[] => "an array",
        _ => value.GetType().Name,
    };

    private void Parse()
    {
        long at = 0;
        if (U32(ref at) != Magic)
            throw Damaged("does not start with 'GGUF': it is not a GGUF file");
        uint version = U32(ref at);
        if (version is not (2 or 3))
            throw Damaged(version is 1 ? "is GGUF version 1, which llama.cpp no longer reads; convert it again" : $"has GGUF version {version} (a big-endian file, or a newer format); versions 2 and 3 are supported");
        Version = (int)version;
        ulong tensorCount = U64(ref at), keyCount = U64(ref at);
        // Each key takes at least 12 bytes and each tensor info at least 24: a count beyond that is damage.
        if (keyCount > (ulong)(Length / 12) || tensorCount > (ulong)(Length / 24))
            throw Damaged($"declares {keyCount:N0} metadata keys and {tensorCount:N0} tensors, more than its {Length:N0} bytes can hold");

        var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
        for (ulong i = 0; i < keyCount; i++)
        {
            var key = String(ref at);
            var value = Value(ref at, U32(ref at), key, depth: 0);
            if (!metadata.TryAdd(key, value))
                throw Damaged($"has the metadata key '{key}' twice");
        }
        Metadata = metadata;
        long alignment = metadata.TryGetValue("general.alignment", out var a) ? a is long l ? l : throw Damaged("has a general.alignment that is not an integer") : 32;
        if (alignment is < 1 or > 1 << 20 || (alignment & (alignment - 1)) != 0)
            throw Damaged($"has general.alignment {alignment}; it must be a power of two");
        Alignment = (int)alignment;

        var infos = new List<(string Name, long[] Dims, GgufTypeInfo Type, long Offset)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            var name = String(ref at);
            if (!names.Add(name))
                throw Damaged($"has the tensor '{name}' twice");
            uint dimensions = U32(ref at);
            if (dimensions is 0 or > MaxDimensions)
                throw Damaged($"says tensor '{name}' has {dimensions} dimensions; 1 to {MaxDimensions} are possible");
            var dims = new long[dimensions];
            for (int d = 0; d < dims.Length; d++)
            {
                ulong n = U64(ref at);
                if (n is 0 or > long.MaxValue / 2)
                    throw Damaged($"gives tensor '{name}' a dimension of {n}");
                dims[d] = (long)n;
            }
            uint typeId = U32(ref at);
            var type = GgufTypeInfo.Of(typeId) ?? throw Damaged($"stores tensor '{name}' as type {typeId}, which ggml does not define");
            ulong offset = U64(ref at);
            if (offset > (ulong)Length || (long)offset % alignment != 0)
                throw Damaged($"places tensor '{name}' at offset {offset}, outside the file or not aligned to {alignment}");
            infos.Add((name, dims, type, (long)offset));
        }
        DataOffset = (at + alignment - 1) / alignment * alignment;

        var tensors = new List<GgufTensorInfo>(infos.Count);
        long dataBytes = Length - DataOffset;
        foreach (var (name, dims, type, offset) in infos)
        {
            if (dims[0] % type.BlockSize != 0)
                throw Damaged($"stores tensor '{name}' as {type.Type}, whose blocks hold {type.BlockSize} values, but its rows are {dims[0]} long");
            long bytes;
            try
            {
                long elements = dims.Aggregate(1L, (x, y) => checked(x * y));
                bytes = checked(elements / type.BlockSize * type.BlockBytes);
            }
            catch (OverflowException)
            {
                throw Damaged($"gives tensor '{name}' dimensions [{string.Join(", ", dims)}] too large to count");
            }
            // Subtracted, not added: offset + bytes may pass long's range.
            if (offset > dataBytes || bytes > dataBytes - offset)
                throw Damaged($"needs {bytes:N0} bytes for tensor '{name}' at offset {offset:N0}, past the end of the file: it is truncated");
            tensors.Add(new GgufTensorInfo(name, dims, type.Type, offset, bytes));
        }
        // Each byte belongs to one tensor at most: overlapping tensors would let a small file describe
        // (and make a loader allocate) far more weights than it holds.
        var byOffset = tensors.OrderBy(t => t.Offset).ToList();
        for (int i = 1; i < byOffset.Count; i++)
            if (byOffset[i - 1].Offset + byOffset[i - 1].ByteLength > byOffset[i].Offset)
                throw Damaged($"places tensor '{byOffset[i].Name}' at offset {byOffset[i].Offset:N0}, inside tensor '{byOffset[i - 1].Name}' ({byOffset[i - 1].Offset:N0} to {byOffset[i - 1].Offset + byOffset[i - 1].ByteLength:N0}): tensors overlap");
        Tensors = tensors;
    }

    private object Value(ref long at, uint type, string key, int depth) => type switch
    {
        0 => Box(Read(ref at, 1)[0]),
        1 => Box((sbyte)Read(ref at, 1)[0]),
        2 => Box(BitConverter.ToUInt16(Read(ref at, 2))),
        3 => Box(BitConverter.ToInt16(Read(ref at, 2))),
        4 => Box(U32(ref at)),
        5 => Box(BitConverter.ToInt32(Read(ref at, 4))),
        // A float32 written for a decimal (an epsilon of 1e-6) reads back as that decimal, not 9.99999997e-07.
        6 => double.Parse(BitConverter.ToSingle(Read(ref at, 4)).ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture),
        7 => Read(ref at, 1)[0] switch { 0 => False, 1 => True, var b => throw Damaged($"has metadata '{key}' with the boolean byte {b}") },
        8 => String(ref at),
        9 when depth == 0 => ArrayValue(ref at, key),
        10 => U64(ref at) is var u && u <= long.MaxValue ? (long)u : (object)u,
        11 => BitConverter.ToInt64(Read(ref at, 8)),
        12 => BitConverter.ToDouble(Read(ref at, 8)),
        _ => throw Damaged($"has metadata '{key}' of value type {type}{(depth > 0 ? " inside an array" : "")}, which GGUF does not define"),
    };

    // Small integers and booleans (token types, flags) share boxes: an array of them costs a reference per element.
    private static readonly object[] SmallIntegers = Enumerable.Range(-128, 384).Select(i => (object)(long)i).ToArray();
    private static readonly object True = true, False = false;

    private static object Box(long value) => value is >= -128 and < 256 ? SmallIntegers[value + 128] : value;

    private object[] ArrayValue(ref long at, string key)
    {
        uint elementType = U32(ref at);
        ulong count = U64(ref at);
        // The smallest element is a byte (a string takes at least its 8-byte length).
        long least = elementType == 8 ? 8 : elementType is 0 or 1 or 7 ? 1 : 2;
        if (count > (ulong)((Length - at) / least))
            throw Damaged($"has metadata '{key}' with {count:N0} elements, more than the rest of the file can hold");
        if (count > MaxArrayElements)
            throw Damaged($"has metadata '{key}' with {count:N0} elements; at most {MaxArrayElements:N0} are read (the largest vocabularies hold about 260,000)");
        var items = new object[count];
        for (ulong i = 0; i < count; i++)
            items[i] = Value(ref at, elementType, key, depth: 1);
        return items;
    }

    private string String(ref long at)
    {
        ulong length = U64(ref at);
        if (length > MaxStringBytes || (long)length > Length - at)
            throw Damaged($"has a string of {length:N0} bytes at offset {at - 8:N0}, longer than {(length > MaxStringBytes ? "any GGUF string" : "the rest of the file")}");
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Read(ref at, (int)length));
        }
        catch (DecoderFallbackException)
        {
            throw Damaged($"has a string at offset {at - (long)length:N0} that is not valid UTF-8");
        }
    }

    private uint U32(ref long at) => BitConverter.ToUInt32(Read(ref at, 4));

    private ulong U64(ref long at) => BitConverter.ToUInt64(Read(ref at, 8));

    private ReadOnlySpan<byte> Read(ref long at, int count)
    {
        if (at + count > Length)
            throw Damaged($"ends at byte {Length:N0} in the middle of its header (reading {count} bytes at {at:N0}): it is truncated");
        var span = new ReadOnlySpan<byte>(_base + at, count);
        at += count;
        return span;
    }

    private InvalidCheckpointException Damaged(string what) => new($"'{Path}' {what}.");

    /// <inheritdoc />
    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
