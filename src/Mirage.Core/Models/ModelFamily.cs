namespace Mirage.Core.Models;

/// <summary>Which layers attend through a sliding window, when the config gives a window but no per-layer types.</summary>
public enum SlidingLayers
{
    /// <summary>No layer (the window, if any, is ignored).</summary>
    None,
    /// <summary>Every layer (Mistral, Phi-3).</summary>
    All,
    /// <summary>Every layer but each <c>sliding_window_pattern</c>-th (Gemma 2: a pattern of 2; Gemma 3: of 6 unless the config says).</summary>
    AllButEveryNth,
    /// <summary>The layers from <c>max_window_layers</c> on, when <c>use_sliding_window</c> is set (Qwen2).</summary>
    FromMaxWindowLayers,
}

/// <summary>
/// One decoder family as Mirage runs it: its names in Hugging Face configs and GGUF files, and the
/// handful of facts in which it differs from Llama. The forward pass, the config reader, the GGUF
/// reader and the converter read these; adding a family is one entry in <see cref="All"/>.
/// </summary>
/// <param name="Architecture">The Hugging Face <c>architectures</c> entry (<c>Qwen2ForCausalLM</c>).</param>
/// <param name="ModelType">The Hugging Face <c>model_type</c> written back into configs.</param>
/// <param name="GgufArchitecture">GGUF's <c>general.architecture</c> for the family (Mistral files are <c>llama</c>).</param>
/// <param name="ReadsGguf">Whether a GGUF file of <see cref="GgufArchitecture"/> loads as this family (one family per GGUF name).</param>
/// <param name="QkvBias">Q, K and V always have biases and the output projection none, whatever <c>attention_bias</c> says (Qwen2).</param>
/// <param name="QkNorm">Q and K are RMS-normalised per head before RoPE (Qwen3, Gemma 3).</param>
/// <param name="FusedProjections">Q, K, V and gate, up are stored fused (<c>qkv_proj</c>, <c>gate_up_proj</c>; Phi-3).</param>
/// <param name="Gemma">Gemma's conventions: norm weights offset by 1, embeddings scaled by sqrt(hidden), norms around both sublayers, optional soft-capping, tied embeddings by default.</param>
/// <param name="LocalRopeTheta">Sliding layers use their own RoPE base (<c>rope_local_base_freq</c>; Gemma 3).</param>
/// <param name="Sliding">Which layers slide.</param>
/// <param name="SlidingPattern">With <see cref="SlidingLayers.AllButEveryNth"/>, n when the config has no <c>sliding_window_pattern</c>.</param>
public sealed record ModelFamily(
    string Architecture,
    string ModelType,
    string GgufArchitecture,
    bool ReadsGguf = true,
    bool QkvBias = false,
    bool QkNorm = false,
    bool FusedProjections = false,
    bool Gemma = false,
    bool LocalRopeTheta = false,
    SlidingLayers Sliding = SlidingLayers.None,
    int SlidingPattern = 0)
{
    /// <summary>The families Mirage runs.</summary>
    public static IReadOnlyList<ModelFamily> All { get; } =
    [
        new("LlamaForCausalLM", "llama", "llama"),
        new("Qwen2ForCausalLM", "qwen2", "qwen2", QkvBias: true, Sliding: SlidingLayers.FromMaxWindowLayers),
        new("Qwen3ForCausalLM", "qwen3", "qwen3", QkNorm: true),
        new("MistralForCausalLM", "mistral", "llama", ReadsGguf: false, Sliding: SlidingLayers.All),
        new("Phi3ForCausalLM", "phi3", "phi3", FusedProjections: true, Sliding: SlidingLayers.All),
        new("Gemma2ForCausalLM", "gemma2", "gemma2", Gemma: true, Sliding: SlidingLayers.AllButEveryNth, SlidingPattern: 2),
        new("Gemma3ForCausalLM", "gemma3_text", "gemma3", QkNorm: true, Gemma: true, LocalRopeTheta: true, Sliding: SlidingLayers.AllButEveryNth, SlidingPattern: 6),
    ];

    /// <summary>
    /// Whether GGUF stores Q and K rows in Meta's interleaved RoPE order, which Hugging Face rotates
    /// as halves: llama.cpp's <c>llama</c> architecture does.
    /// </summary>
    public bool PermutesQk => GgufArchitecture == "llama";

    /// <summary>The family of a Hugging Face <c>architectures</c> entry, or null.</summary>
    public static ModelFamily? ByArchitecture(string architecture) => All.FirstOrDefault(f => f.Architecture == architecture);

    /// <summary>The family a GGUF file of <c>general.architecture</c> <paramref name="gguf"/> loads as, or null.</summary>
    public static ModelFamily? ByGgufArchitecture(string gguf) => All.FirstOrDefault(f => f.ReadsGguf && f.GgufArchitecture == gguf);

    /// <summary>The family of a parsed config (its architecture is always one of <see cref="All"/>).</summary>
    public static ModelFamily Of(ModelConfig config) => ByArchitecture(config.Architecture)
        ?? throw new InvalidOperationException($"No family for architecture '{config.Architecture}'.");
}
