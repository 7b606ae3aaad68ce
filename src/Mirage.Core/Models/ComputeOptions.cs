using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>Where, in which precision and on which engine a model runs.</summary>
public sealed record ComputeOptions
{
    /// <summary>The dtype names accepted by <see cref="ParseDType"/>.</summary>
    public static readonly IReadOnlyList<string> DTypeNames = ["auto", "float32", "bfloat16", "float16", "float64"];

    /// <summary>
    /// <see cref="ModelConfig.HiddenSize"/> from which <c>auto</c> computes in bfloat16 on a CPU with native
    /// bfloat16. Measured on an AMD EPYC with AVX512-BF16, 2 threads: a 135M Llama (hidden 576) ran
    /// forward passes 3.3x and decoding 1.3x faster in bfloat16; stories260K (hidden 64) decoded 2.6x
    /// slower, its small matmuls dominated by per-call overhead.
    /// </summary>
    public const int AutoBFloat16MinHiddenSize = 512;

    /// <summary>Torch device: <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    /// <value>Default <c>cpu</c>.</value>
    public string Device { get; init; } = "cpu";

    /// <summary>Compute dtype of the TorchSharp engine (weights are converted to it on load), or null for <c>auto</c>.</summary>
    /// <value>
    /// Default null (<c>auto</c>, <see cref="ResolveDType(Device, ModelConfig)"/>): bfloat16 on a CPU with native bfloat16
    /// (AVX512-BF16 or AMX) for models with a hidden size of at least <see cref="AutoBFloat16MinHiddenSize"/>,
    /// float32 otherwise: on CPUs without it bfloat16 is emulated and 5-6x slower than float32.
    /// float16 is only sensible on CUDA; float64 is for numerical checks.
    /// </value>
    public ScalarType? DType { get; init; }

    /// <summary>CPU threads for torch and llama.cpp, or null to keep their default (one per core).</summary>
    public int? Threads { get; init; }

    /// <summary>What runs the forward passes; <see cref="ModelEngine.Auto"/> by default (<see cref="ModelEngines.Resolve"/>).</summary>
    public ModelEngine Engine { get; init; } = ModelEngine.Auto;

    /// <summary>
    /// Whether the model will run methods that need gradients or attention weights (the CCI
    /// attribution methods): <see cref="ModelEngine.Auto"/> then picks TorchSharp even for a GGUF file.
    /// </summary>
    public bool NeedsGradients { get; init; }

    /// <summary>Parses a dtype name (<c>auto</c>, <c>float32</c>, <c>bfloat16</c>, <c>float16</c>, <c>float64</c>; also <c>fp32</c>, <c>bf16</c>, <c>fp16</c>); null is <c>auto</c>.</summary>
    public static ScalarType? ParseDType(string name) => name.ToLowerInvariant() switch
    {
        "auto" => null,
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

    /// <summary>
    /// The dtype a model computes in: <see cref="DType"/> when set; for <c>auto</c>, bfloat16 on a CPU
    /// with native bfloat16 for a model of hidden size <see cref="AutoBFloat16MinHiddenSize"/> or more,
    /// and float32 otherwise (also on CUDA, where <c>--dtype bfloat16</c> is the faster choice on
    /// Ampere and newer GPUs).
    /// </summary>
    public ScalarType ResolveDType(Device device, ModelConfig config) => ResolveDType(device, config, CpuFeatures.HasNativeBFloat16);

    internal ScalarType ResolveDType(Device device, ModelConfig config, bool nativeBFloat16) =>
        DType ?? (device.type == TorchSharp.DeviceType.CPU && nativeBFloat16 && config.HiddenSize >= AutoBFloat16MinHiddenSize
            ? ScalarType.BFloat16
            : ScalarType.Float32);

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
