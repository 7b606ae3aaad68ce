namespace Mirage.Core.Models;

/// <summary>What runs a model's forward passes.</summary>
public enum ModelEngine
{
    /// <summary>llama.cpp for a GGUF file, TorchSharp for a Hugging Face folder (see <see cref="ModelEngines.Resolve"/>).</summary>
    Auto,

    /// <summary>TorchSharp: every method, gradients included; a GGUF file's weights are dequantized to the compute dtype.</summary>
    Torch,

    /// <summary>
    /// llama.cpp (through LLamaSharp): forward passes only (generation, CTI, passage ablation,
    /// verification) on the GGUF file's own quantized weights, in about the file's size; the kernels Ollama and
    /// LM Studio run, so citations explain the model as it is served.
    /// </summary>
    LlamaCpp,
}

/// <summary>Engine names and the rule <see cref="ModelEngine.Auto"/> follows.</summary>
public static class ModelEngines
{
    /// <summary>The names <see cref="Parse"/> reads, as the CLI, HTTP and options spell them.</summary>
    public static readonly IReadOnlyList<string> Names = ["auto", "torch", "llama.cpp"];

    /// <summary>Parses <c>auto</c>, <c>torch</c> or <c>llama.cpp</c> (also <c>llamacpp</c>).</summary>
    public static ModelEngine Parse(string name) => name.ToLowerInvariant() switch
    {
        "auto" => ModelEngine.Auto,
        "torch" or "torchsharp" => ModelEngine.Torch,
        "llama.cpp" or "llamacpp" or "llama-cpp" => ModelEngine.LlamaCpp,
        _ => throw new MirageException($"Unknown engine '{name}'; choose one of {string.Join(", ", Names)}."),
    };

    /// <summary>The name of an engine, as <see cref="Parse"/> reads it and results report it.</summary>
    public static string NameOf(ModelEngine engine) => engine switch
    {
        ModelEngine.Torch => "torch",
        ModelEngine.LlamaCpp => "llama.cpp",
        _ => "auto",
    };

    /// <summary>
    /// The engine that runs a model: as asked, or for <see cref="ModelEngine.Auto"/> llama.cpp on a
    /// GGUF file when the work is forward passes only and no TorchSharp precision was asked for
    /// (<paramref name="dtype"/> null or float32), and TorchSharp otherwise (a folder of safetensors,
    /// a method that needs gradients or attention weights, bfloat16 or float64).
    /// </summary>
    /// <exception cref="MirageException">llama.cpp was asked for what it cannot do: read a folder, compute gradients, or compute in another dtype.</exception>
    public static ModelEngine Resolve(ModelEngine requested, bool isGguf, bool forwardOnly, TorchSharp.torch.ScalarType? dtype)
    {
        bool torchDType = dtype is not null and not TorchSharp.torch.ScalarType.Float32;
        if (requested == ModelEngine.LlamaCpp)
        {
            if (!isGguf)
                throw new MirageException("The llama.cpp engine reads GGUF files; this model is a Hugging Face folder. Use --engine torch (or auto), or convert it with 'mirage convert'.");
            if (!forwardOnly)
                throw new MirageException("This method needs gradients or attention weights, which the llama.cpp engine does not compute; use --engine torch (or auto), or --method ablation.");
            if (torchDType)
                throw new MirageException($"The llama.cpp engine computes in float32 on the file's own weight types; --dtype {ComputeOptions.NameOf(dtype!.Value)} needs --engine torch.");
        }
        return requested switch
        {
            ModelEngine.Auto => isGguf && forwardOnly && !torchDType ? ModelEngine.LlamaCpp : ModelEngine.Torch,
            _ => requested,
        };
    }
}
