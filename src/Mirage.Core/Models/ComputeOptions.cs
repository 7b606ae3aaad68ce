using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>Where and in which precision a model runs.</summary>
public sealed record ComputeOptions
{
    /// <summary>The dtype names accepted by <see cref="ParseDType"/>.</summary>
    public static readonly IReadOnlyList<string> DTypeNames = ["float32", "bfloat16", "float16", "float64"];

    /// <summary>Torch device: <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    /// <value>Default <c>cpu</c>.</value>
    public string Device { get; init; } = "cpu";

    /// <summary>Compute dtype; weights are converted to it on load.</summary>
    /// <value>Default float32. bfloat16 matmuls are several times faster on CPUs with AVX512-BF16;
    /// float16 is only sensible on CUDA; float64 is for numerical checks.</value>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>CPU threads for torch, or null to keep torch's default (one per core).</summary>
    public int? Threads { get; init; }

    /// <summary>Parses a dtype name (<c>float32</c>, <c>bfloat16</c>, <c>float16</c>, <c>float64</c>; also <c>fp32</c>, <c>bf16</c>, <c>fp16</c>).</summary>
    public static ScalarType ParseDType(string name) => name.ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "fp16" or "f16" => ScalarType.Float16,
        "float64" or "fp64" or "f64" => ScalarType.Float64,
        _ => throw new MirageException($"Unknown dtype '{name}'; choose one of {string.Join(", ", DTypeNames)}."),
    };

    /// <summary>The lower-case name of a dtype, as <see cref="ParseDType"/> reads it.</summary>
    public static string NameOf(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        ScalarType.Float64 => "float64",
        _ => dtype.ToString().ToLowerInvariant(),
    };

    /// <summary>Resolves <see cref="Device"/>, failing clearly when CUDA is asked for but absent.</summary>
    internal Device ResolveDevice()
    {
        if (Device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
        {
            if (!cuda.is_available())
                throw new MirageException(
                    $"Device '{Device}' was requested but CUDA is not available. Build with -p:MirageTorchBackend=cuda on a machine with an NVIDIA GPU, or use --device cpu.");
            return new Device(Device);
        }
        if (!Device.Equals("cpu", StringComparison.OrdinalIgnoreCase))
            throw new MirageException($"Unknown device '{Device}'; choose cpu, cuda or cuda:N.");
        return CPU;
    }
}
