using System.IO.MemoryMappedFiles;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Core.Models.Safetensors;

/// <summary>
/// A memory-mapped safetensors file: an 8-byte little-endian header length, a JSON header
/// <c>{name: {dtype, shape, data_offsets}, "__metadata__": {...}}</c>, then raw little-endian data.
/// Every header field is checked against the file before any tensor is read, so a damaged file
/// fails with a message naming the file and the tensor instead of crashing or over-allocating.
/// </summary>
public sealed class SafetensorsFile : ICheckpointTensors, IDisposable
{
    /// <summary>The safetensors format caps the JSON header at 100 MB; a larger value means a damaged file.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MemoryMappedFile? _map;
    private readonly long _dataStart;
    private readonly long _fileLength;
    private readonly Dictionary<ScalarType, Tensor> _mappedByType = [];

    private SafetensorsFile(string path, MemoryMappedFile? map, long dataStart, long fileLength,
        IReadOnlyDictionary<string, SafetensorsTensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _fileLength = fileLength;
        _map = map;
        _dataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The file this instance reads.</summary>
    public string Path { get; }

    /// <summary>The tensors in the file by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsTensorInfo> Tensors { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, long[]> Shapes => field ??= Tensors.ToDictionary(t => t.Key, t => t.Value.Shape, StringComparer.Ordinal);

    /// <summary>The free-form <c>__metadata__</c> strings of the header.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates a safetensors file; the data stays on disk, mapped, until read.</summary>
    /// <exception cref="InvalidCheckpointException">The file is missing, truncated or its header is inconsistent.</exception>
    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path))
            throw new InvalidCheckpointException($"Safetensors file '{path}' does not exist.");
        ModelFiles.CheckRegular(path, what: "weight files");
        byte[] header;
        long fileLength;
        // The length comes from the opened file, not the path's own entry: in a Hugging Face hub
        // cache every weight file is a symbolic link into blobs/.
        using (var stream = File.OpenRead(path))
        {
            fileLength = stream.Length;
            if (fileLength < 8)
                throw new InvalidCheckpointException($"'{path}' is truncated: {fileLength} bytes, shorter than the 8-byte header length.");
            Span<byte> lengthBytes = stackalloc byte[8];
            stream.ReadExactly(lengthBytes);
            ulong headerLength = BitConverter.ToUInt64(lengthBytes);
            if (headerLength > MaxHeaderBytes)
                throw new InvalidCheckpointException(
                    $"'{path}' declares a {headerLength:N0}-byte header, more than the format's {MaxHeaderBytes:N0}-byte limit: the file is damaged or not safetensors.");
            if ((long)headerLength > fileLength - 8)
                throw new InvalidCheckpointException(
                    $"'{path}' is truncated: its header needs {headerLength:N0} bytes but only {fileLength - 8:N0} follow the length field.");
            header = new byte[headerLength];
            stream.ReadExactly(header);
        }

        long dataStart = 8 + header.Length;
        var (tensors, metadata) = ParseHeader(path, header, fileLength - dataStart);
        if (fileLength == dataStart)
            return new SafetensorsFile(path, null, dataStart, fileLength, tensors, metadata);
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        return new SafetensorsFile(path, map, dataStart, fileLength, tensors, metadata);
    }

    private static (Dictionary<string, SafetensorsTensorInfo>, Dictionary<string, string>) ParseHeader(
        string path, byte[] header, long dataLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new InvalidCheckpointException($"'{path}' has a header that is not valid JSON: {e.Message}", e);
        }

        using (document)
        try
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidCheckpointException($"'{path}' has a header that is not a JSON object.");
            var tensors = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        throw new InvalidCheckpointException($"'{path}': __metadata__ must be an object of strings.");
                    foreach (var entry in property.Value.EnumerateObject())
                        metadata[entry.Name] = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : entry.Value.GetRawText();
                    continue;
                }
                if (!tensors.TryAdd(property.Name, ParseEntry(path, property.Name, property.Value, dataLength)))
                    throw new InvalidCheckpointException($"'{path}': tensor '{property.Name}' appears twice in the header.");
            }
            CheckNoOverlap(path, tensors.Values);
            return (tensors, metadata);
        }
        catch (InvalidOperationException e)
        {
            // The JSON reader checks a name's UTF-8 only when the name is read.
            throw new InvalidCheckpointException($"'{path}' has a header with a name that is not valid UTF-8: {e.Message}", e);
        }
    }

    private static SafetensorsTensorInfo ParseEntry(string path, string name, JsonElement entry, long dataLength)
    {
        string Where() => $"'{path}', tensor '{name}'";
        if (entry.ValueKind != JsonValueKind.Object)
            throw new InvalidCheckpointException($"{Where()}: the entry is not an object.");
        if (!entry.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new InvalidCheckpointException($"{Where()}: missing 'dtype'.");
        string dtype = dtypeElement.GetString()!;
        if (!SafetensorsDType.TryGet(dtype, out int elementSize, out var scalarType))
            throw new InvalidCheckpointException(
                $"{Where()}: unknown dtype '{dtype}'; supported: {string.Join(", ", SafetensorsDType.Names)}.");

        if (!entry.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new InvalidCheckpointException($"{Where()}: missing 'shape'.");
        var shape = new long[shapeElement.GetArrayLength()];
        long elements = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            var dim = shapeElement[i];
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out shape[i]) || shape[i] < 0)
                throw new InvalidCheckpointException($"{Where()}: shape entry {i} ({dim.GetRawText()}) is not a non-negative integer.");
            try
            {
                elements = checked(elements * shape[i]);
            }
            catch (OverflowException)
            {
                throw new InvalidCheckpointException($"{Where()}: shape [{string.Join(", ", shape)}] overflows.");
            }
        }

        if (!entry.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array
            || offsets.GetArrayLength() != 2
            || offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end))
            throw new InvalidCheckpointException($"{Where()}: 'data_offsets' must be two integers [begin, end].");
        if (begin < 0 || end < begin)
            throw new InvalidCheckpointException($"{Where()}: data_offsets [{begin}, {end}] are not an increasing range.");
        if (end > dataLength)
            throw new InvalidCheckpointException(
                $"{Where()}: data_offsets end {end:N0} lies past the end of the data ({dataLength:N0} bytes): the file is truncated.");
        long expected = elements > long.MaxValue / elementSize ? -1 : elements * elementSize;
        if (end - begin != expected)
            throw new InvalidCheckpointException(
                $"{Where()}: shape [{string.Join(", ", shape)}] of {dtype} needs {(expected < 0 ? "more than 2^63" : expected.ToString("N0", System.Globalization.CultureInfo.InvariantCulture))} bytes but data_offsets span {end - begin:N0}.");
        return new SafetensorsTensorInfo(name, dtype, scalarType, shape, begin, end);
    }

    private static void CheckNoOverlap(string path, IEnumerable<SafetensorsTensorInfo> tensors)
    {
        SafetensorsTensorInfo? previous = null;
        foreach (var info in tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.Begin))
        {
            if (previous is not null && info.Begin < previous.End)
                throw new InvalidCheckpointException(
                    $"'{path}': tensors '{previous.Name}' [{previous.Begin}, {previous.End}) and '{info.Name}' [{info.Begin}, {info.End}) overlap.");
            previous = info;
        }
    }

    /// <summary>
    /// Reads one tensor as <paramref name="dtype"/> on <paramref name="device"/>. Where that is the
    /// stored type on the CPU, the tensor lies over the file's mapped pages (copy-on-write: writing
    /// to it never changes the file, and pages are read only when used); otherwise it is a copy.
    /// </summary>
    public Tensor Read(string name, ScalarType? dtype = null, Device? device = null)
    {
        if (!Tensors.TryGetValue(name, out var info))
            throw new InvalidCheckpointException($"'{Path}' has no tensor named '{name}'.");
        var type = dtype ?? info.ScalarType;
        device ??= CPU;
        long elements = info.ElementCount;
        if (type == info.ScalarType && device.type == DeviceType.CPU && elements > 0 && info.ByteLength / elements is var size && (_dataStart + info.Begin) % size == 0)
            return Mapped(info.ScalarType, size).narrow(0, (_dataStart + info.Begin) / size, elements).view(info.Shape);
        if (info.ByteLength > int.MaxValue)
            throw new InvalidCheckpointException($"'{Path}', tensor '{name}': {info.ByteLength:N0} bytes is more than one tensor read supports (2 GiB).");

        using var scope = NewDisposeScope();
        var raw = empty(info.Shape, info.ScalarType);
        if (info.ByteLength > 0)
            CopyBytes(info, raw.bytes);
        var converted = raw.to(dtype ?? info.ScalarType, device ?? CPU);
        return converted.MoveToOuterDisposeScope();
    }

    // The whole file as elements of one type (torch's from_file: a private mapping), made once per type;
    // tensors are views into it, and the mapping lives as long as any of them.
    private Tensor Mapped(ScalarType type, long elementSize)
    {
        if (!_mappedByType.TryGetValue(type, out var mapped))
            _mappedByType[type] = mapped = from_file(Path, shared: false, size: _fileLength / elementSize, dtype: type).DetachFromDisposeScope();
        return mapped;
    }

    // A view of this tensor's bytes alone, unmapped once copied: a model converted tensor by tensor
    // (bfloat16 weights, float32 compute) never holds the whole file's pages beside its own copy.
    private unsafe void CopyBytes(SafetensorsTensorInfo info, Span<byte> destination)
    {
        using var view = _map!.CreateViewAccessor(_dataStart + info.Begin, info.ByteLength, MemoryMappedFileAccess.Read);
        byte* basePointer = null;
        var handle = view.SafeMemoryMappedViewHandle;
        handle.AcquirePointer(ref basePointer);
        try
        {
            // The view may start before the offset it maps (page alignment).
            new ReadOnlySpan<byte>(basePointer + view.PointerOffset, (int)info.ByteLength).CopyTo(destination);
        }
        finally
        {
            handle.ReleasePointer();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var mapped in _mappedByType.Values)
            mapped.Dispose();
        _mappedByType.Clear();
        _map?.Dispose();
    }
}
