using System.Runtime.InteropServices;
using Mirage.Core.Models.Gguf;

namespace Mirage.Core.Tests.Models.Gguf;

/// <summary>
/// ggml itself (the native library LLamaSharp.Backend.Cpu ships): its reference quantizers and its
/// dequantizers, called directly, as the independent oracle for Mirage's GGUF reading.
/// </summary>
internal static unsafe class Ggml
{
    private static readonly Lazy<nint> Library = new(() =>
    {
        var native = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        // Any build: these are ggml's portable C routines.
        foreach (var variant in new[] { "avx2", "avx", "noavx", "avx512" })
        {
            var path = Path.Combine(native, variant, "libggml-base.so");
            if (File.Exists(path) && NativeLibrary.TryLoad(path, out var handle))
                return handle;
        }
        throw new InvalidOperationException($"libggml-base.so (LLamaSharp.Backend.Cpu) was not found under {native}.");
    });

    /// <summary>ggml's <c>quantize_row_TYPE_ref</c>: floats to blocks.</summary>
    public static byte[] Quantize(GgufType type, float[] values)
    {
        var info = GgufTypeInfo.Of(type);
        var blocks = new byte[values.Length / info.BlockSize * info.BlockBytes];
        var quantize = (delegate* unmanaged<float*, byte*, long, void>)NativeLibrary.GetExport(Library.Value, $"quantize_row_{Name(type)}_ref");
        fixed (float* x = values)
        fixed (byte* y = blocks)
            quantize(x, y, values.Length);
        return blocks;
    }

    /// <summary>ggml's <c>dequantize_row_TYPE</c> (or its fp16 row conversion): blocks to floats.</summary>
    public static float[] Dequantize(GgufType type, byte[] blocks)
    {
        var info = GgufTypeInfo.Of(type);
        var values = new float[blocks.Length / info.BlockBytes * info.BlockSize];
        var symbol = type == GgufType.F16 ? "ggml_fp16_to_fp32_row" : $"dequantize_row_{Name(type)}";
        var dequantize = (delegate* unmanaged<byte*, float*, long, void>)NativeLibrary.GetExport(Library.Value, symbol);
        fixed (byte* x = blocks)
        fixed (float* y = values)
            dequantize(x, y, values.Length);
        return values;
    }

    private static string Name(GgufType type) => type.ToString().ToLowerInvariant().Replace("_k", "_K");
}
