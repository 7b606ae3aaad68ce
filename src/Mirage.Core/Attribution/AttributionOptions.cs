using System.Text.Json.Serialization;

namespace Mirage.Core.Attribution;

/// <summary>How gradient attributions are reduced over the embedding dimension.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<EmbeddingReduction>))]
public enum EmbeddingReduction
{
    /// <summary>L2 norm of the per-dimension scores (Inseq's <c>vnorm</c>, default).</summary>
    L2Norm,
    /// <summary>Sum of the per-dimension scores (keeps sign; integrated-gradients completeness holds).</summary>
    Sum,
}

/// <summary>How gradients for several target steps are obtained.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<GradientStrategy>))]
public enum GradientStrategy
{
    /// <summary>One forward pass with the graph kept, cut to the last target's prefix, then one
    /// backward per target to the input embeddings only (fastest on CPU; default).</summary>
    SharedGraph,
    /// <summary>Targets in chunks, each row its own prefix (right-padded), one backward per chunk;
    /// trades memory for fewer, larger passes (useful on GPUs).</summary>
    BatchedChunks,
}

/// <summary>How attention weights are combined over layers and heads.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<AttentionAggregation>))]
public enum AttentionAggregation
{
    /// <summary>Mean over the selected layers and heads (default).</summary>
    Mean,
    /// <summary>Maximum over the selected layers and heads.</summary>
    Max,
}

/// <summary>Options shared by the attribution methods; each method reads the ones it uses.</summary>
public sealed record AttributionOptions
{
    /// <summary>Reduction over the embedding dimension for gradient methods.</summary>
    /// <value>Default <see cref="EmbeddingReduction.L2Norm"/>.</value>
    public EmbeddingReduction Reduction { get; init; } = EmbeddingReduction.L2Norm;

    /// <summary>Divide each step's scores by their L1 norm over input positions.</summary>
    /// <value>Default false.</value>
    public bool NormalizeL1 { get; init; }

    /// <summary>Divide each step's scores by their largest absolute value.</summary>
    /// <value>Default false.</value>
    public bool RescaleByMax { get; init; }

    /// <summary>How gradient methods handle several targets.</summary>
    /// <value>Default <see cref="GradientStrategy.SharedGraph"/>.</value>
    public GradientStrategy GradientStrategy { get; init; } = GradientStrategy.SharedGraph;

    /// <summary>Most targets per chunk for <see cref="GradientStrategy.BatchedChunks"/>, and rows per batch for integrated gradients and occlusion.</summary>
    /// <value>Default 8.</value>
    public int ChunkSize { get; init; } = 8;

    /// <summary>Integrated gradients: number of points on the path.</summary>
    /// <value>Default 50 (Captum's default).</value>
    public int IntegrationSteps { get; init; } = 50;

    /// <summary>Attention: one layer (0-based; negative counts from the end), or null for all.</summary>
    public int? AttentionLayer { get; init; }

    /// <summary>Attention: one head, or null for all.</summary>
    public int? AttentionHead { get; init; }

    /// <summary>Attention: mean or max over the selected layers and heads.</summary>
    public AttentionAggregation AttentionAggregation { get; init; } = AttentionAggregation.Mean;

    /// <summary>
    /// The layer the layer methods read (0-based; negative counts from the end): value zeroing's
    /// (null: the last, Inseq's default) and layer gradient x activation's output (null: the input
    /// embeddings, Inseq's default).
    /// </summary>
    public int? Layer { get; init; }

    /// <summary>Occlusion: spans (start, end) of input positions occluded together; null occludes each token alone.</summary>
    public IReadOnlyList<(int Start, int End)>? OcclusionSpans { get; init; }

    /// <summary>Throws when a value is out of range.</summary>
    public void Validate()
    {
        if (ChunkSize < 1)
            throw new MirageException($"ChunkSize must be at least 1, got {ChunkSize}.");
        if (IntegrationSteps < 1)
            throw new MirageException($"IntegrationSteps must be at least 1, got {IntegrationSteps}.");
    }
}
