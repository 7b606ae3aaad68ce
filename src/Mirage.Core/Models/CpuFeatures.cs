namespace Mirage.Core.Models;

/// <summary>What this machine's CPU does natively, as far as the choice of compute dtype cares.</summary>
public static class CpuFeatures
{
    private static readonly Lazy<bool> NativeBFloat16 = new(() => ReportsBFloat16(ReadCpuFlags()));

    /// <summary>
    /// Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX-BF16, read from
    /// <c>/proc/cpuinfo</c>); false where that cannot be read. Without it libtorch emulates bfloat16,
    /// 5-6x slower than float32.
    /// </summary>
    public static bool HasNativeBFloat16 => NativeBFloat16.Value;

    /// <summary>Whether a <c>/proc/cpuinfo</c> text lists a native bfloat16 instruction set.</summary>
    public static bool ReportsBFloat16(string cpuinfo) =>
        cpuinfo.Split('\n').Where(line => line.StartsWith("flags", StringComparison.Ordinal))
            .Any(line => line.Split([' ', '\t', ':'], StringSplitOptions.RemoveEmptyEntries).Any(flag => flag is "avx512_bf16" or "amx_bf16"));

    private static string ReadCpuFlags()
    {
        try
        {
            // Only the first processor's block is needed; the file is a few KB per core.
            using var reader = new StreamReader("/proc/cpuinfo");
            var text = new System.Text.StringBuilder();
            while (reader.ReadLine() is { } line && text.Length < 1 << 16)
            {
                text.Append(line).Append('\n');
                if (line.StartsWith("flags", StringComparison.Ordinal))
                    break;
            }
            return text.ToString();
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }
}
