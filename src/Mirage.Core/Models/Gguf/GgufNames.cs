using System.Text.RegularExpressions;

namespace Mirage.Core.Models.Gguf;

/// <summary>
/// The facts that differ between a GGUF file and a Hugging Face checkpoint of the same model:
/// llama.cpp's tensor names, and the row order of Q and K in GGUF's <c>llama</c> architecture,
/// which keeps Meta's interleaved RoPE pairs where Hugging Face rotates halves.
/// </summary>
public static partial class GgufNames
{
    private static readonly (string Gguf, string HuggingFace)[] Global =
    [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
    ];

    private static readonly (string Gguf, string HuggingFace)[] PerLayer =
    [
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("attn_q_norm", "self_attn.q_norm"),
        ("attn_k_norm", "self_attn.k_norm"),
        ("attn_qkv", "self_attn.qkv_proj"),
        ("ffn_norm", "post_attention_layernorm"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
        ("ffn_up", "mlp.gate_up_proj"),
    ];

    [GeneratedRegex(@"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")]
    private static partial Regex GgufLayer();

    [GeneratedRegex(@"^model\.layers\.(\d+)\.([a-z_.]+)\.(weight|bias)$")]
    private static partial Regex HuggingFaceLayer();

    // Where the models differ in naming: Phi-3's ffn_up holds gate and up; with Gemma 2's four norms,
    // llama.cpp's ffn_norm is the MLP input's norm and post_attention_norm the attention output's.
    private static string? Special(string part, ModelConfig config, bool toHuggingFace) => (part, toHuggingFace) switch
    {
        ("ffn_up", true) when config.FusedProjections => "mlp.gate_up_proj",
        ("ffn_norm", true) when config.SandwichNorms => "pre_feedforward_layernorm",
        ("post_attention_norm", true) when config.SandwichNorms => "post_attention_layernorm",
        ("post_ffw_norm", true) when config.SandwichNorms => "post_feedforward_layernorm",
        ("pre_feedforward_layernorm", false) => "ffn_norm",
        ("post_attention_layernorm", false) when config.SandwichNorms => "post_attention_norm",
        ("post_feedforward_layernorm", false) => "post_ffw_norm",
        _ => null,
    };

    /// <summary>The Hugging Face name of a GGUF tensor of a model described by <paramref name="config"/>, or null for one the runtime has no place for.</summary>
    public static string? ToHuggingFace(string gguf, ModelConfig config)
    {
        foreach (var (g, h) in Global)
            if (g == gguf)
                return h;
        var m = GgufLayer().Match(gguf);
        if (!m.Success)
            return null;
        var part = Special(m.Groups[2].Value, config, toHuggingFace: true) ?? PerLayer.FirstOrDefault(p => p.Gguf == m.Groups[2].Value).HuggingFace;
        return part is null ? null : $"model.layers.{m.Groups[1].Value}.{part}.{m.Groups[3].Value}";
    }

    /// <summary>The GGUF name of a Hugging Face tensor of a model described by <paramref name="config"/>, or null for one GGUF has no name for.</summary>
    public static string? ToGguf(string huggingFace, ModelConfig config)
    {
        foreach (var (g, h) in Global)
            if (h == huggingFace)
                return g;
        var m = HuggingFaceLayer().Match(huggingFace);
        if (!m.Success)
            return null;
        var part = Special(m.Groups[2].Value, config, toHuggingFace: false) ?? PerLayer.FirstOrDefault(p => p.HuggingFace == m.Groups[2].Value).Gguf;
        return part is null ? null : $"blk.{m.Groups[1].Value}.{part}.{m.Groups[3].Value}";
    }

    /// <summary>How many heads a tensor's rows are grouped in when GGUF's <c>llama</c> architecture reorders them (Q: query heads, K: key/value heads), or 0.</summary>
    public static int PermutedHeads(string huggingFace, ModelConfig config) =>
        huggingFace.EndsWith("self_attn.q_proj.weight", StringComparison.Ordinal) || huggingFace.EndsWith("self_attn.q_proj.bias", StringComparison.Ordinal) ? config.NumHeads
        : huggingFace.EndsWith("self_attn.k_proj.weight", StringComparison.Ordinal) || huggingFace.EndsWith("self_attn.k_proj.bias", StringComparison.Ordinal) ? config.NumKeyValueHeads
        : 0;
}
