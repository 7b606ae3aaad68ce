using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Mirage.Core.Models.Llama;

// The Llama decoder family (Llama 2/3, Qwen2, Mistral) read top to bottom: RMSNorm, rotary
// embedding, attention, MLP, decoder layer, the full causal LM. Field names are the checkpoint's
// tensor names, so loading is a name map. Shapes: B batch, T new tokens, S key slots (cached +
// new), C hidden size, H query heads, K key/value heads, D head dim, V vocabulary.
// Norms, rotary angles and softmax run in float32 as in transformers, or in float64 when the
// model computes in float64 (numerical checks).

internal static class Precision
{
    /// <summary>The dtype to accumulate sensitive reductions in for a given compute dtype.</summary>
    public static ScalarType Accumulate(ScalarType dtype) => dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
}

/// <summary>
/// RMSNorm: x / sqrt(mean(x^2) + eps) * weight, computed in float32 as transformers does; with an
/// offset (Gemma), x / rms * (offset + weight), multiplied in float32 before the cast back.
/// </summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    // Held for the module's life: a Scalar converted implicitly per call is left to the finalizer,
    // which may free it while native code still reads it (TorchSharp frees scalars on the GC thread).
    private readonly Scalar _eps, _offset;
    private readonly bool _hasOffset;

    public RmsNorm(int size, ModelConfig c, ScalarType dtype, Device device) : base(nameof(RmsNorm))
    {
        weight = new Parameter(empty(size, dtype, device));
        (_eps, _offset, _hasOffset) = (c.RmsNormEps.ToScalar(), c.NormOffset.ToScalar(), c.NormOffset != 0);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var xf = x.to(Precision.Accumulate(x.dtype));                          // [B, T, C]
        var normed = xf * rsqrt(xf.Squared().mean([-1], keepdim: true).Plus(_eps)); // [B, T, C]
        var result = !_hasOffset ? weight * normed.to(x.dtype) : (normed * weight.to(xf.dtype).Plus(_offset)).to(x.dtype);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>The per-position scale <c>forward(x) = x * Scale(x)</c> (<c>[.., C]</c>, in the accumulation dtype), to fold the norm into a sum of parts.</summary>
    public Tensor Scale(Tensor x)
    {
        using var scope = NewDisposeScope();
        var xf = x.to(Precision.Accumulate(x.dtype));
        var gain = _hasOffset ? weight.to(xf.dtype).Plus(_offset) : weight.to(xf.dtype);
        return (rsqrt(xf.Squared().mean([-1], keepdim: true).Plus(_eps)) * gain).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _eps.Dispose();
            _offset.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>Rotary position embedding with rotate-half pairing (x[i], x[i + D/2]).</summary>
internal sealed class RotaryEmbedding : IDisposable
{
    // transformers keeps inverse frequencies in float32; a float64 model uses exact ones. LongRoPE
    // has a second set for sequences beyond the original context.
    private readonly Tensor _inverseFrequencies32, _inverseFrequencies64;        // [R/2]
    private readonly Tensor? _longInverseFrequencies32, _longInverseFrequencies64; // [R/2]
    private readonly double _attentionFactor;
    private readonly int _original;

    public RotaryEmbedding(ModelConfig config, Device device, bool local = false)
    {
        // Gemma 3's sliding layers rotate with their own base and no scaling.
        var scaling = local ? null : config.RopeScaling;
        var theta = local ? config.LocalRopeTheta!.Value : config.RopeTheta;
        (_inverseFrequencies64, _inverseFrequencies32) = Frequencies(RopeScaling.InverseFrequencies(config.RotaryDim, theta, scaling), device);
        if (scaling is { Type: "longrope" })
        {
            (_longInverseFrequencies64, _longInverseFrequencies32) = Frequencies(RopeScaling.InverseFrequencies(config.RotaryDim, theta, scaling, longContext: true), device);
            (_attentionFactor, _original) = (scaling.AttentionFactor, scaling.OriginalMaxPositionEmbeddings);
        }
        else
        {
            (_attentionFactor, _original) = (1, int.MaxValue);
        }
    }

    private static (Tensor, Tensor) Frequencies(double[] inverse, Device device)
    {
        var exact = tensor(inverse, ScalarType.Float64, device).DetachFromDisposeScope();
        return (exact, exact.to(ScalarType.Float32).DetachFromDisposeScope());
    }

    /// <summary>cos and sin tables for the given positions, <c>[B, 1, T, R]</c> in <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) Tables(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var precision = Precision.Accumulate(dtype);
        // LongRoPE switches to its long factors once a sequence passes the original context, as transformers does.
        bool longContext = _longInverseFrequencies32 is not null && positions.max().item<long>() + 1 > _original;
        var inverse = (precision == ScalarType.Float64, longContext) switch
        {
            (true, true) => _longInverseFrequencies64!,
            (false, true) => _longInverseFrequencies32!,
            (true, false) => _inverseFrequencies64,
            (false, false) => _inverseFrequencies32,
        };
        var angles = positions.to(precision).unsqueeze(-1) * inverse;                    // [B, T, R/2]
        var full = cat([angles, angles], -1).unsqueeze(1);                                   // [B, 1, T, R]
        var (cos, sin) = (full.cos(), full.sin());
        if (_attentionFactor != 1)
            (cos, sin) = (cos.Times(_attentionFactor), sin.Times(_attentionFactor));
        return (cos.to(dtype).MoveToOuterDisposeScope(), sin.to(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>Rotates the first R dimensions of each head (all of them unless the model rotates partially); the rest pass through.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long rotated = cos.shape[^1], all = x.shape[^1];
        var part = rotated == all ? x : x.narrow(-1, 0, rotated);
        long half = rotated / 2;
        var turned = cat([-part.narrow(-1, half, half), part.narrow(-1, 0, half)], -1); // [B, H, T, R]
        var result = (part * cos).Plus(turned * sin);
        return rotated == all ? result : cat([result, x.narrow(-1, rotated, all - rotated)], -1);
    }

    public void Dispose()
    {
        _inverseFrequencies32.Dispose();
        _inverseFrequencies64.Dispose();
        _longInverseFrequencies32?.Dispose();
        _longInverseFrequencies64?.Dispose();
    }
}

/// <summary>Multi-head attention with grouped key/value heads, an optional KV cache and sliding window.</summary>
internal sealed class LlamaAttention : nn.Module
{
    private readonly Projection q_proj, k_proj, v_proj, o_proj;
    private readonly RmsNorm? q_norm, k_norm;
    private readonly int _heads, _kvHeads, _headDim, _layer;
    private readonly double _scale;
    private readonly double? _softcap;

    public LlamaAttention(ModelConfig c, int layer, ScalarType dtype, Device device) : base(nameof(LlamaAttention))
    {
        (_heads, _kvHeads, _headDim, _layer) = (c.NumHeads, c.NumKeyValueHeads, c.HeadDim, layer);
        (_scale, _softcap) = (c.AttentionScale ?? 1 / Math.Sqrt(c.HeadDim), c.AttentionSoftcap);
        q_proj = new Projection(c.HiddenSize, c.NumHeads * c.HeadDim, c.QkvBias, dtype, device);
        k_proj = new Projection(c.HiddenSize, c.NumKeyValueHeads * c.HeadDim, c.QkvBias, dtype, device);
        v_proj = new Projection(c.HiddenSize, c.NumKeyValueHeads * c.HeadDim, c.QkvBias, dtype, device);
        o_proj = new Projection(c.NumHeads * c.HeadDim, c.HiddenSize, c.OutputBias, dtype, device);
        if (c.QkNorm)
        {
            q_norm = new RmsNorm(c.HeadDim, c, dtype, device);
            k_norm = new RmsNorm(c.HeadDim, c, dtype, device);
        }
        RegisterComponents();
    }

    /// <summary>
    /// Returns the attention output <c>[B, T, C]</c> and, when asked (explicit kernel only), the weights <c>[B, H, T, S]</c>.
    /// A null <paramref name="mask"/> means plain causal attention (see <see cref="AttentionMask.IsImplicit"/>); the explicit kernel always has one.
    /// </summary>
    public (Tensor Output, Tensor? Weights) Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, bool explicitKernel, bool outputWeights)
    {
        long b = x.shape[0], t = x.shape[1];
        var q = q_proj.forward(x).view(b, t, _heads, _headDim);                   // [B, T, H, D]
        var k = k_proj.forward(x).view(b, t, _kvHeads, _headDim);                 // [B, T, K, D]
        if (q_norm is not null && k_norm is not null)
            (q, k) = (q_norm.forward(q), k_norm.forward(k));                       // per head, over D
        q = q.transpose(1, 2);                                                      // [B, H, T, D]
        k = k.transpose(1, 2);                                                      // [B, K, T, D]
        var v = v_proj.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2); // [B, K, T, D]
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        if (cache is not null)
            (k, v) = cache.Append(_layer, k, v);                                    // [B, K, S, D]
        k = k.repeat_interleave(_heads / _kvHeads, dim: 1);                         // [B, H, S, D]
        v = v.repeat_interleave(_heads / _kvHeads, dim: 1);                         // [B, H, S, D]

        var (y, weights) = AttentionKernel.Attend(q, k, v, mask, _scale, _softcap, explicitKernel, outputWeights); // [B, H, T, D]
        y = y.transpose(1, 2).reshape(b, t, _heads * _headDim);                      // [B, T, H*D]
        return (o_proj.forward(y), weights);
    }

    /// <summary>
    /// The factors the output splits into by head and source token: each head's values of
    /// <paramref name="x"/> (the attention input) <c>[B, H, S, D]</c>, the output projection per head
    /// <c>[H, D, C]</c>, and its bias (<see cref="LayerDecomposition"/>).
    /// </summary>
    public (Tensor Values, Tensor Output, Tensor? Bias) Factors(Tensor x)
    {
        long b = x.shape[0], t = x.shape[1];
        var v = v_proj.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);   // [B, K, S = T, D]
        v = v.repeat_interleave(_heads / _kvHeads, dim: 1);                           // [B, H, S, D]
        var wo = o_proj.Weight.view(-1, _heads, _headDim).permute(1, 2, 0);            // [H, D, C]
        return (v, wo, o_proj.Bias?.alias());
    }
}

/// <summary>Gated feed-forward: down(act(gate(x)) * up(x)), act SiLU (SwiGLU) or tanh-approximated GELU (Gemma's GeGLU).</summary>
internal sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    private readonly Projection gate_proj, up_proj, down_proj;
    private readonly bool _gelu;

    public LlamaMlp(ModelConfig c, ScalarType dtype, Device device) : base(nameof(LlamaMlp))
    {
        gate_proj = new Projection(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype, device);
        up_proj = new Projection(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype, device);
        down_proj = new Projection(c.IntermediateSize, c.HiddenSize, c.MlpBias, dtype, device);
        _gelu = c.HiddenActivation == "gelu_pytorch_tanh";
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => down_proj.forward(Activations(x));

    /// <summary>Each neuron's activation <c>act(gate(x)) * up(x)</c>, <c>[..., I]</c>: what the down projection mixes.</summary>
    public Tensor Activations(Tensor x)
    {
        var gate = gate_proj.forward(x);
        return (_gelu ? F.gelu(gate, TorchSharp.Modules.GELU.Approximate.tanh) : F.silu(gate)) * up_proj.forward(x);
    }

    /// <summary>Each neuron's output <c>a_i W_down[:, i]</c> for activations <c>[I]</c>: <c>[I, C]</c>; with the bias, they sum to the block's output.</summary>
    public (Tensor Outputs, Tensor? Bias) NeuronOutputs(Tensor activations) =>
        (activations.unsqueeze(1) * down_proj.Weight.t().to(activations.dtype), down_proj.Bias);
}

/// <summary>
/// Pre-norm decoder layer: x + attn(norm(x)), then x + mlp(norm(x)). With sandwich norms (Gemma 2)
/// the outputs are normalised too: x + norm(attn(norm(x))), then x + norm(mlp(norm(x))); there the
/// checkpoint's <c>post_attention_layernorm</c> is the attention output's norm, not the MLP input's.
/// </summary>
internal sealed class LlamaDecoderLayer : nn.Module
{
    private readonly RmsNorm input_layernorm, post_attention_layernorm;
    private readonly RmsNorm? pre_feedforward_layernorm, post_feedforward_layernorm;

    // Sandwich norms (Gemma 2): each block's output is normed before it joins the residual stream.
    [System.Diagnostics.CodeAnalysis.MemberNotNullWhen(true, nameof(pre_feedforward_layernorm), nameof(post_feedforward_layernorm))]
    private bool Sandwich => pre_feedforward_layernorm is not null && post_feedforward_layernorm is not null;
    private readonly LlamaAttention self_attn;
    private readonly LlamaMlp mlp;

    public LlamaDecoderLayer(ModelConfig c, int layer, ScalarType dtype, Device device) : base(nameof(LlamaDecoderLayer))
    {
        input_layernorm = new RmsNorm(c.HiddenSize, c, dtype, device);
        self_attn = new LlamaAttention(c, layer, dtype, device);
        post_attention_layernorm = new RmsNorm(c.HiddenSize, c, dtype, device);
        if (c.SandwichNorms)
        {
            pre_feedforward_layernorm = new RmsNorm(c.HiddenSize, c, dtype, device);
            post_feedforward_layernorm = new RmsNorm(c.HiddenSize, c, dtype, device);
        }
        mlp = new LlamaMlp(c, dtype, device);
        RegisterComponents();
    }

    public (Tensor Output, Tensor? Weights) Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, bool explicitAttention, bool outputWeights)
    {
        var (attended, weights) = self_attn.Forward(input_layernorm.forward(x), cos, sin, mask, cache, explicitAttention, outputWeights);
        if (!Sandwich)
        {
            x = x.Plus(attended);                                                                        // [B, T, C]
            x = x.Plus(mlp.forward(post_attention_layernorm.forward(x)));                                // [B, T, C]
        }
        else
        {
            x = x.Plus(post_attention_layernorm.forward(attended));                                      // [B, T, C]
            x = x.Plus(post_feedforward_layernorm.forward(mlp.forward(pre_feedforward_layernorm.forward(x)))); // [B, T, C]
        }
        return (x, weights);
    }

    /// <summary>
    /// The same pass as <see cref="Forward"/> (explicit attention, so with its weights), taken apart
    /// (<see cref="LayerDecomposition"/>); the output is <see cref="LayerDecomposition.ResidualPost"/>.
    /// </summary>
    public LayerDecomposition Decompose(Tensor x, Tensor cos, Tensor sin, Tensor mask)
    {
        var normed = input_layernorm.forward(x);
        var (attended, weights) = self_attn.Forward(normed, cos, sin, mask, cache: null, explicitKernel: true, outputWeights: true);
        var (values, output, bias) = self_attn.Factors(normed);
        Tensor? scale = null;
        if (Sandwich)
        {
            // The output norm scales each position by one factor taken from the whole output.
            scale = post_attention_layernorm.Scale(attended);                            // [B, T, C]
            attended = post_attention_layernorm.forward(attended);
        }
        var mid = x.Plus(attended);                                                       // [B, T, C]
        var ffn = Sandwich
            ? post_feedforward_layernorm.forward(mlp.forward(pre_feedforward_layernorm.forward(mid)))
            : mlp.forward(post_attention_layernorm.forward(mid));                         // [B, T, C]
        // An alias, so the record owns its own handle even where x is the caller's embeddings.
        return new LayerDecomposition(x.alias(), mid, mid.Plus(ffn), ffn, weights!, values, output, bias, scale);
    }
    /// <summary>
    /// The FFN block's output at <paramref name="position"/> split by neuron, <c>[I, C]</c>, and what
    /// no neuron accounts for (the down projection's bias), <c>[C]</c>: they add up to
    /// <see cref="LayerDecomposition.FfnOutput"/> there (a sandwich norm's scale folded in).
    /// </summary>
    public (Tensor Neurons, Tensor Remainder) Neurons(LayerDecomposition clean, int position)
    {
        var mid = clean.ResidualMid[0, position];                                                          // [C]
        var activations = mlp.Activations(Sandwich ? pre_feedforward_layernorm.forward(mid) : post_attention_layernorm.forward(mid)); // [I]
        var (neurons, bias) = mlp.NeuronOutputs(activations);                                             // [I, C]
        var rest = bias?.to(neurons.dtype) ?? zeros([neurons.shape[1]], neurons.dtype, neurons.device);
        if (!Sandwich)
            return (neurons, rest.clone());
        var scale = post_feedforward_layernorm.Scale(neurons.sum(dim: 0).Plus(rest));                          // [C]
        return (neurons * scale.unsqueeze(0), rest * scale);
    }

    /// <summary>
    /// Value zeroing (Mohebbi et al., 2023) at target <paramref name="position"/>: the layer's output
    /// there had the values of one source (in every head) been zeroed, for each source up to the
    /// target, <c>[position + 1, C]</c>, on the clean input of the layer. Zeroing a value leaves the
    /// attention weights as they were, so the attention output only loses that source's parts.
    /// </summary>
    public Tensor ZeroedOutputs(LayerDecomposition clean, Tensor headValues, int position)
    {
        var at = tensor(new long[] { position }, device: headValues.device);
        var raw = clean.AttentionParts(headValues, at, scaled: false)[0, 0];                                       // [S, H, C]
        var parts = raw.narrow(0, 0, position + 1).sum(1);                                                        // [S', C]
        var pre = clean.ResidualPre[0, position].to(parts.dtype);                                                  // [C]
        if (!Sandwich)
        {
            var mid = clean.ResidualMid[0, position].to(parts.dtype).sub(parts);                                  // [S', C]
            return mid.Plus(mlp.forward(post_attention_layernorm.forward(mid)));
        }
        var attended = raw.sum([0, 1]);                                                                            // [C]
        if (clean.OutputBias is { } bias)
            attended = attended.Plus(bias.to(attended.dtype));
        var sandwiched = pre.Plus(post_attention_layernorm.forward(attended.sub(parts)));                        // [S', C]
        return sandwiched.Plus(post_feedforward_layernorm.forward(mlp.forward(pre_feedforward_layernorm.forward(sandwiched))));
    }
}

/// <summary>The transformer body: embeddings, decoder layers, final norm (checkpoint prefix <c>model.</c>).</summary>
internal sealed class LlamaBackbone : nn.Module
{
    internal readonly TokenEmbedding embed_tokens;
    internal readonly ModuleList<LlamaDecoderLayer> layers;
    internal readonly RmsNorm norm;

    public LlamaBackbone(ModelConfig c, ScalarType dtype, Device device) : base(nameof(LlamaBackbone))
    {
        embed_tokens = new TokenEmbedding(c.VocabSize, c.HiddenSize, dtype, device);
        layers = nn.ModuleList(Enumerable.Range(0, c.NumLayers).Select(i => new LlamaDecoderLayer(c, i, dtype, device)).ToArray());
        norm = new RmsNorm(c.HiddenSize, c, dtype, device);
        RegisterComponents();
    }
}

/// <summary>
/// A Llama-family causal language model. <see cref="Forward"/> starts from embeddings, so
/// attribution methods can take gradients with respect to them without patching the model.
/// </summary>
internal sealed class LlamaForCausalLM : nn.Module
{
    private readonly LlamaBackbone model;
    private readonly Projection? lm_head;
    private readonly RotaryEmbedding _rotary;
    private readonly RotaryEmbedding? _localRotary;
    private readonly ModelConfig _config;

    public LlamaForCausalLM(ModelConfig config, ScalarType dtype, Device device) : base(nameof(LlamaForCausalLM))
    {
        _config = config;
        model = new LlamaBackbone(config, dtype, device);
        if (!config.TieWordEmbeddings)
            lm_head = new Projection(config.HiddenSize, config.VocabSize, hasBias: false, dtype, device);
        _rotary = new RotaryEmbedding(config, device);
        if (config.LocalRopeTheta is not null)
            _localRotary = new RotaryEmbedding(config, device, local: true);
        RegisterComponents();
    }

    /// <summary>Token ids <c>[B, T]</c> to embeddings <c>[B, T, C]</c>.</summary>
    public Tensor Embed(Tensor ids) => model.embed_tokens.forward(ids);

    /// <summary>The embedding matrix <c>[V, C]</c>.</summary>
    public Tensor EmbeddingMatrix => model.embed_tokens.Weight;

    /// <summary>Layer <paramref name="layer"/>'s FFN output at one position split by neuron (<see cref="LlamaDecoderLayer.Neurons"/>).</summary>
    public (Tensor Neurons, Tensor Remainder) Neurons(int layer, LayerDecomposition clean, int position) => model.layers[layer].Neurons(clean, position);

    /// <summary>Layer <paramref name="layer"/>'s value-zeroed outputs at one target (<see cref="LlamaDecoderLayer.ZeroedOutputs"/>).</summary>
    public Tensor ZeroedOutputs(int layer, LayerDecomposition clean, Tensor headValues, int position) => model.layers[layer].ZeroedOutputs(clean, headValues, position);

    /// <summary>The unembedding matrix <c>[V, C]</c> (the LM head, or the embeddings where tied).</summary>
    public Tensor UnembeddingMatrix => lm_head?.Weight ?? EmbeddingMatrix;

    /// <summary>Residual-stream vectors <c>[..., C]</c> to logits <c>[..., V]</c>: the final norm, the LM head, soft-capping.</summary>
    public Tensor Unembed(Tensor x)
    {
        x = model.norm.forward(x);
        var logits = (lm_head is null ? F.linear(x, EmbeddingMatrix) : lm_head.forward(x)).to(Precision.Accumulate(x.dtype));
        if (_config.FinalSoftcap is double cap)
        {
            using var capScalar = cap.ToScalar(); // disposed here, so not left to the finalizer mid-call
            logits = (logits / capScalar).tanh() * capScalar;
        }
        return logits;
    }

    public ForwardOutput Forward(ForwardRequest request)
    {
        using var scope = NewDisposeScope();
        var x = request.Embeddings;                                          // [B, T, C]
        if (request.StartLayer < 0 || request.StartLayer > _config.NumLayers)
            throw new ArgumentException($"StartLayer {request.StartLayer} is outside 0..{_config.NumLayers}.", nameof(request));
        if (_config.ScaleEmbeddings && request.StartLayer == 0)
            x = x * tensor(Math.Sqrt(_config.HiddenSize), x.dtype, x.device);  // the factor rounded to the compute dtype, as transformers does
        int cached = request.Cache?.Length ?? 0;
        var (cos, sin) = _rotary.Tables(request.Positions, x.dtype);         // [B, 1, T, D]
        var (localCos, localSin) = _localRotary?.Tables(request.Positions, x.dtype) ?? (cos, sin);
        var attentions = request.OutputAttentions ? new List<Tensor>() : null;
        var hidden = request.OutputHiddenStates ? new List<Tensor> { x } : null;

        // Only explicit attention returns the weights and soft-caps the scores; otherwise SDPA.
        bool explicitAttention = request.OutputAttentions || request.Decompose || _config.AttentionSoftcap is not null;
        var decomposition = request.Decompose ? new List<LayerDecomposition>() : null;
        if (decomposition is not null && request.Cache is not null)
            throw new ArgumentException("A decomposed pass runs over the whole sequence, without a KV cache.", nameof(request));
        int layerIndex = request.StartLayer;
        var masks = new Dictionary<int, Tensor?>(); // by window (0 = none): layers share masks
        foreach (var layer in model.layers.Skip(request.StartLayer))
        {
            var window = _config.SlidingWindows.Count > layerIndex ? _config.SlidingWindows[layerIndex] : null;
            if (!masks.TryGetValue(window ?? 0, out var mask))
                masks[window ?? 0] = mask = explicitAttention || !AttentionMask.IsImplicit(x.shape[1], cached, request.KeyMask, window)
                    ? AttentionMask.Build(x, cached, request.KeyMask, window)
                    : null;
            // A layer's intermediates are freed when it is done (autograd keeps what a backward pass
            // needs); only its output, and the weights when asked for, outlive it.
            var input = x;
            if (decomposition is not null)
            {
                var (layerCos, layerSin) = window is null ? (cos, sin) : (localCos, localSin);
                using var layerScope = NewDisposeScope();
                var taken = layer.Decompose(x, layerCos, layerSin, mask!);
                foreach (var t in taken.Tensors())
                    t.MoveToOuterDisposeScope();
                decomposition.Add(taken);
                x = taken.ResidualPost;
                hidden?.Add(x);
                layerIndex++;
                continue;
            }
            using (var layerScope = NewDisposeScope())
            {
                var (output, weights) = window is null
                    ? layer.Forward(x, cos, sin, mask, request.Cache, explicitAttention, request.OutputAttentions)
                    : layer.Forward(x, localCos, localSin, mask, request.Cache, explicitAttention, request.OutputAttentions);
                x = output.MoveToOuterDisposeScope();
                attentions?.Add(weights!.MoveToOuterDisposeScope());
            }
            if (hidden is null && !ReferenceEquals(input, request.Embeddings))
                input.Dispose();
            hidden?.Add(x);
            layerIndex++;
        }
        request.Cache?.Commit((int)x.shape[1]);

        if (request.LogitsFrom > 0)
            x = x.narrow(1, request.LogitsFrom, x.shape[1] - request.LogitsFrom);  // [B, T', C]
        var logits = Unembed(x);                                             // [B, T, V]

        logits.MoveToOuterDisposeScope();
        attentions?.ForEach(t => t.MoveToOuterDisposeScope());
        hidden?.ForEach(t => t.MoveToOuterDisposeScope());
        foreach (var layer in decomposition ?? [])
        {
            foreach (var t in layer.Tensors())
                t.MoveToOuterDisposeScope();
        }
        return new ForwardOutput(logits, attentions, hidden, decomposition);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _rotary.Dispose();
            _localRotary?.Dispose();
        }
        base.Dispose(disposing);
    }
}
