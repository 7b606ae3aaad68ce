namespace Mirage.Core.Models;

/// <summary>
/// The <c>rope_scaling</c> block of a Hugging Face config: how rotary frequencies are stretched
/// for longer contexts. Types supported: <c>linear</c> and <c>llama3</c> (and <c>default</c>, none).
/// </summary>
/// <param name="Type">The scaling type (<c>rope_type</c> or legacy <c>type</c>).</param>
/// <param name="Factor">How much longer the context is than the original.</param>
/// <param name="LowFreqFactor">llama3: wavelengths above original/low are fully scaled.</param>
/// <param name="HighFreqFactor">llama3: wavelengths below original/high are not scaled.</param>
/// <param name="OriginalMaxPositionEmbeddings">llama3: the context length the model was trained on.</param>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor = 1, double HighFreqFactor = 4, int OriginalMaxPositionEmbeddings = 8192)
{
    /// <summary>The scaling types this runtime reads from Hugging Face configs (<c>su</c> is LongRoPE's older name).</summary>
    public static readonly IReadOnlyList<string> SupportedTypes = ["linear", "llama3", "longrope", "su"];

    /// <summary>LongRoPE: per-frequency divisors below the original context (<c>short_factor</c>).</summary>
    public IReadOnlyList<double>? ShortFactors { get; init; }

    /// <summary>LongRoPE: per-frequency divisors beyond the original context (<c>long_factor</c>).</summary>
    public IReadOnlyList<double>? LongFactors { get; init; }

    /// <summary>LongRoPE: cos and sin are multiplied by this (<c>attention_factor</c>).</summary>
    public double AttentionFactor { get; init; } = 1;

    /// <summary>Per-frequency divisors, for the <c>factors</c> type: how GGUF files store a scaling (llama.cpp's <c>rope_freqs</c>, from Llama 3.1's rule).</summary>
    public IReadOnlyList<double>? Factors { get; init; }

    /// <summary>A scaling given as one divisor per frequency (GGUF's <c>rope_freqs</c> tensor).</summary>
    public static RopeScaling FromFactors(IReadOnlyList<double> factors) => new("factors", 1) { Factors = factors };

    /// <summary>This scaling as one divisor per frequency (what GGUF's <c>rope_freqs</c> holds): unscaled over scaled frequency.</summary>
    public double[] AsFactors(int headDim, double theta)
    {
        var plain = InverseFrequencies(headDim, theta, null);
        var scaled = InverseFrequencies(headDim, theta, this);
        return plain.Select((f, i) => f / scaled[i]).ToArray();
    }

    /// <summary>
    /// The rotary inverse frequencies <c>theta^(-2i/d)</c> for i &lt; d/2, scaled by this rule
    /// (as in transformers' <c>_compute_linear_scaling_rope_parameters</c> and
    /// <c>_compute_llama3_parameters</c>), in double precision.
    /// </summary>
    /// <remarks><paramref name="longContext"/> picks LongRoPE's long factors (a sequence beyond the original context).</remarks>
    public static double[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling, bool longContext = false)
    {
        var inv = new double[headDim / 2];
        for (int i = 0; i < inv.Length; i++)
            inv[i] = 1.0 / Math.Pow(theta, 2.0 * i / headDim);
        if (scaling is null)
            return inv;
        return scaling.Type switch
        {
            "linear" => inv.Select(f => f / scaling.Factor).ToArray(),
            "llama3" => inv.Select(scaling.Llama3).ToArray(),
            "factors" when scaling.Factors?.Count == inv.Length => inv.Select((f, i) => f / scaling.Factors[i]).ToArray(),
            "longrope" when (longContext ? scaling.LongFactors : scaling.ShortFactors) is { } factors && factors.Count == inv.Length =>
                inv.Select((f, i) => f / factors[i]).ToArray(),
            "longrope" => throw new MirageException($"LongRoPE factors must number {inv.Length}, one per frequency of the {headDim} rotated dimensions."),
            "factors" => throw new MirageException($"RoPE frequency factors number {scaling.Factors?.Count ?? 0}; a head of {headDim} dimensions has {inv.Length} frequencies."),
            _ => throw new MirageException($"rope_scaling type '{scaling.Type}' is not supported; supported: {string.Join(", ", SupportedTypes)}."),
        };
    }

    private double Llama3(double frequency)
    {
        double lowFreqWavelength = OriginalMaxPositionEmbeddings / LowFreqFactor;
        double highFreqWavelength = OriginalMaxPositionEmbeddings / HighFreqFactor;
        double wavelength = 2 * Math.PI / frequency;
        if (wavelength < highFreqWavelength)
            return frequency;
        if (wavelength > lowFreqWavelength)
            return frequency / Factor;
        // Between the two bands: interpolate smoothly between scaled and unscaled.
        double smooth = (OriginalMaxPositionEmbeddings / wavelength - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
        return (1 - smooth) * frequency / Factor + smooth * frequency;
    }
}
