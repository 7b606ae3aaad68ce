using static TorchSharp.torch;

namespace Mirage.Core.Attribution;

/// <summary>The reductions and normalisations applied to raw attribution scores.</summary>
internal static class ScorePostprocessing
{
    /// <summary>Per-dimension scores <c>[..., C]</c> reduced over the last dimension.</summary>
    public static Tensor Reduce(Tensor scores, EmbeddingReduction reduction) => reduction switch
    {
        EmbeddingReduction.L2Norm => scores.norm(-1),
        _ => scores.sum(-1),
    };

    /// <summary>Applies the optional L1 normalisation and max rescaling to one row of scores, as doubles.</summary>
    public static float[] Finish(Tensor row, AttributionOptions options, int length)
    {
        var values = new float[length];
        var computed = row.to(ScalarType.Float32).cpu().data<float>().ToArray();
        Array.Copy(computed, values, Math.Min(computed.Length, length));
        if (options.NormalizeL1)
            Scale(values, values.Sum(v => Math.Abs(v)));
        if (options.RescaleByMax)
            Scale(values, values.Length == 0 ? 0 : values.Max(v => Math.Abs(v)));
        return values;
    }

    private static void Scale(float[] values, float by)
    {
        if (by == 0)
            return;
        for (int i = 0; i < values.Length; i++)
            values[i] /= by;
    }
}
