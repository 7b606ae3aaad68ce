using System.Text;
using Mirage.Core.Models;
using Mirage.Core.Models.Safetensors;
using Mirage.Tests;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Models.Safetensors;

public sealed class SafetensorsFileTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    // A file from a raw header and data section, to build exactly the damage each test needs.
    private string WriteRaw(string header, int dataBytes, string name = "weights.safetensors", ulong? declaredLength = null)
    {
        var path = _temp.File(name);
        var headerBytes = Encoding.UTF8.GetBytes(header);
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes(declaredLength ?? (ulong)headerBytes.Length));
        stream.Write(headerBytes);
        stream.Write(new byte[dataBytes]);
        return path;
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Float64)]
    public void WriteThenRead_RoundTripsValuesShapesAndMetadata(ScalarType dtype)
    {
        var path = _temp.File("roundtrip.safetensors");
        using var a = randn(3, 5).to(dtype);
        using var b = TorchScalars.Range(7).to(dtype);
        SafetensorsWriter.Write(path, [new("b", b), new("a.weight", a)], new Dictionary<string, string> { ["format"] = "pt" });

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(["a.weight", "b"], file.Tensors.Keys.Order());
        Assert.Equal("pt", file.Metadata["format"]);
        using var readA = file.Read("a.weight");
        Assert.Equal(dtype, readA.dtype);
        Assert.Equal([3L, 5L], readA.shape);
        Assert.True(readA.eq(a).all().item<bool>());
        using var readB32 = file.Read("b", ScalarType.Float32);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => (float)i), readB32.data<float>().ToArray());
    }

    [Fact]
    public void Read_InTheStoredDtype_ViewsOneMappingOfTheFile_AndWritingToItLeavesTheFileAlone()
    {
        var path = _temp.File("mapped.safetensors");
        using var a = randn(4, 6);
        using var b = randn(8);
        SafetensorsWriter.Write(path, [new("a", a), new("b", b)]);

        using (var file = SafetensorsFile.Open(path))
        {
            using var mappedA = file.Read("a");
            using var mappedB = file.Read("b", ScalarType.Float32);
            using var copied = file.Read("a", ScalarType.Float64);
            Assert.True(mappedA.eq(a).all().item<bool>());
            Assert.True(mappedB.eq(b).all().item<bool>());
            Assert.True(copied.to(ScalarType.Float32).eq(mappedA).all().item<bool>());
            // Both tensors are views of one storage (the file mapped once), not copies.
            Assert.Equal(mappedA.storage<float>().data_ptr(), mappedB.storage<float>().data_ptr());
            Assert.NotEqual(mappedA.storage<float>().data_ptr(), copied.storage<double>().data_ptr());
            mappedA.add_(TorchScalars.One, TorchScalars.One); // copy-on-write: the process's pages change, the file does not
        }

        using var reopened = SafetensorsFile.Open(path);
        using var again = reopened.Read("a");
        Assert.True(again.eq(a).all().item<bool>());
    }

    [Fact]
    public void Read_TensorNotAlignedToItsElementSize_IsCopiedWithTheSameValues()
    {
        // 3 bfloat16 values (6 bytes) put the float32 tensor after them at offset 6.
        var path = _temp.File("unaligned.safetensors");
        using var a = tensor(new[] { 1f, 2f, 3f }).to(ScalarType.BFloat16);
        using var b = tensor(new[] { 0.5f, -1.25f, 3e-3f, 7f });
        SafetensorsWriter.Write(path, [new("a", a), new("b", b)]);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(6, file.Tensors["b"].Begin);
        using var read = file.Read("b");
        Assert.Equal(new[] { 0.5f, -1.25f, 3e-3f, 7f }, read.data<float>().ToArray());
    }

    [Fact]
    public void Write_OverAFileAModelHasMapped_LeavesTheMappedTensorsTheirOldValues()
    {
        var path = _temp.File("rewritten.safetensors");
        using var before = TorchScalars.Range(1024).to(ScalarType.Float32);
        SafetensorsWriter.Write(path, [new("w", before)]);
        using var file = SafetensorsFile.Open(path);
        using var mapped = file.Read("w");

        // Rewritten in place, the file would lose the pages the model still reads (SIGBUS); it is replaced instead.
        using var after = zeros(8);
        SafetensorsWriter.Write(path, [new("w", after)]);

        Assert.True(mapped.eq(before).all().item<bool>());
        using var reread = SafetensorsFile.Open(path);
        Assert.Equal([8L], reread.Tensors["w"].Shape);
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!, "rewritten*"));
    }

    [Fact]
    public void Write_PadsHeaderToEightBytesWithSpaces()
    {
        var path = _temp.File("padded.safetensors");
        using var t = ones(3);
        SafetensorsWriter.Write(path, [new("x", t)]);
        var bytes = File.ReadAllBytes(path);
        int length = (int)BitConverter.ToUInt64(bytes);
        var header = Encoding.UTF8.GetString(bytes, 8, length);
        Assert.Equal(0, length % 8);
        Assert.Equal(8 + length + 12, bytes.Length);
        Assert.Matches("^\\{.*\\} *$", header);
    }

    [Fact]
    public void Open_MissingFile_SaysSo()
    {
        var error = Assert.Throws<InvalidCheckpointException>(() => SafetensorsFile.Open(_temp.File("absent.safetensors")));
        Assert.Contains("absent.safetensors", error.Message);
        Assert.Contains("does not exist", error.Message);
    }

    [Fact]
    public void Open_FileShorterThanLengthField_IsTruncated()
    {
        var path = _temp.File("tiny.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        var error = Assert.Throws<InvalidCheckpointException>(() => SafetensorsFile.Open(path));
        Assert.Contains("tiny.safetensors", error.Message);
        Assert.Contains("truncated", error.Message);
    }

    [Fact]
    public void Open_TenGigabyteHeaderLength_FailsWithoutAllocating()
    {
        var path = WriteRaw("{}", 0, declaredLength: 10_000_000_000UL);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidCheckpointException>(() => SafetensorsFile.Open(path));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000, "opening should not allocate the declared header");
        Assert.Contains("10,000,000,000-byte header", error.Message);
        Assert.Contains("weights.safetensors", error.Message);
    }

    [Fact]
    public void Open_HeaderLongerThanFile_IsTruncated()
    {
        var path = WriteRaw("{}", 0, declaredLength: 4096);
        var error = Assert.Throws<InvalidCheckpointException>(() => SafetensorsFile.Open(path));
        Assert.Contains("truncated", error.Message);
        Assert.Contains("4,096", error.Message);
    }

    [Fact]
    public void Open_HeaderNotJson_SaysSo()
    {
        var error = Assert.Throws<InvalidCheckpointException>(() => SafetensorsFile.Open(WriteRaw("{\"a\": [", 0)));
        Assert.Contains("not valid JSON", error.Message);
    }

    [Fact]
    public void Open_OffsetsPastTheEnd_NameTensorAndTruncation()
    {
        var path = WriteRaw("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 8);
        var error = Assert.Throws<InvalidCheckpointException>(() => SafetensorsFile.Open(path));
        Assert.Contains("tensor 'w'", error.Message);
        Assert.Contains("past the end", error.Message);
    }

    [Fact]
    public void Open_OverlappingTensors_NameBoth()
    {
        var path = WriteRaw("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12);
        var error = Assert.Throws<InvalidCheckpointException>(() => SafetensorsFile.Open(path));
        Assert.Contains("'a'", error.Message);
        Assert.Contains("'b'", error.Message);
        Assert.Contains("overlap", error.Message);
    }

    [Fact]
    public void Open_ShapeNotMatchingByteCount_SaysBothSizes()
    {
        var path = WriteRaw("""{"w":{"dtype":"BF16","shape":[3,3],"data_offsets":[0,16]}}""", 16);
        var error = Assert.Throws<InvalidCheckpointException>(() => SafetensorsFile.Open(path));
        Assert.Contains("tensor 'w'", error.Message);
        Assert.Contains("needs 18 bytes", error.Message);
        Assert.Contains("span 16", error.Message);
    }

    [Fact]
    public void Open_UnknownDtype_ListsSupportedOnes()
    {
        var path = WriteRaw("""{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}""", 2);
        var error = Assert.Throws<InvalidCheckpointException>(() => SafetensorsFile.Open(path));
        Assert.Contains("unknown dtype 'F8_E4M3'", error.Message);
        Assert.Contains("BF16", error.Message);
    }

    [Fact]
    public void Open_NegativeOrNonIntegerShape_IsRejected()
    {
        var path = WriteRaw("""{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4);
        var error = Assert.Throws<InvalidCheckpointException>(() => SafetensorsFile.Open(path));
        Assert.Contains("not a non-negative integer", error.Message);
    }

    [Fact]
    public void Open_HugeShape_ReportsOverflowInsteadOfAllocating()
    {
        var path = WriteRaw("""{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}""", 4);
        var error = Assert.Throws<InvalidCheckpointException>(() => SafetensorsFile.Open(path));
        Assert.Contains("tensor 'w'", error.Message);
    }

    [Fact]
    public void Read_UnknownName_SaysWhichFile()
    {
        var path = _temp.File("one.safetensors");
        using var t = ones(2);
        SafetensorsWriter.Write(path, [new("x", t)]);
        using var file = SafetensorsFile.Open(path);
        var error = Assert.Throws<InvalidCheckpointException>(() => file.Read("y"));
        Assert.Contains("one.safetensors", error.Message);
        Assert.Contains("'y'", error.Message);
    }
}
