using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Mirage.Core.Models.Llama;

// The model's weighted layers hold uninitialised parameters: the loader fills each one once from the
// checkpoint (or points it at the file's mapped bytes), and a trainer initialises its own. torch's
// nn.Linear and nn.Embedding would first write random values into every weight, which for a large
// model costs the whole model's memory and seconds before a single weight is read.

/// <summary>y = x Wᵀ (+ b), with <c>weight [Out, In]</c> and an optional <c>bias [Out]</c> left unset until loaded.</summary>
internal sealed class Projection : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;

    public Projection(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype, Device device) : base(nameof(Projection))
    {
        weight = new Parameter(empty([outFeatures, inFeatures], dtype, device));
        if (hasBias)
            bias = new Parameter(empty(outFeatures, dtype, device));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => F.linear(x, weight, bias);

    /// <summary>The weight <c>[out, in]</c>.</summary>
    public Tensor Weight => weight;

    /// <summary>The bias <c>[out]</c>, or null.</summary>
    public Tensor? Bias => bias;
}

/// <summary>Token ids to rows of <c>weight [V, C]</c>, left unset until loaded.</summary>
internal sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public TokenEmbedding(long vocabulary, long size, ScalarType dtype, Device device) : base(nameof(TokenEmbedding))
    {
        weight = new Parameter(empty([vocabulary, size], dtype, device));
        RegisterComponents();
    }

    /// <summary>The embedding matrix <c>[V, C]</c>.</summary>
    public Tensor Weight => weight;

    /// <summary>Ids <c>[B, T]</c> to embeddings <c>[B, T, C]</c>.</summary>
    public override Tensor forward(Tensor ids) => weight.index_select(0, ids.reshape(-1)).reshape([.. ids.shape, weight.shape[1]]);
}
