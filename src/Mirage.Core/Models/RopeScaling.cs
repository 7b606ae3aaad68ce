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
    /// <summary>The scaling types this runtime implements.</summary>
    public static readonly IReadOnlyList<string> SupportedTypes = ["linear", "llama3"];

    /// <summary>
    /// The rotary inverse frequencies <c>theta^(-2i/d)</c> for i &lt; d/2, scaled by this rule
    /// (as in transformers' <c>_compute_linear_scaling_rope_parameters</c> and
    /// <c>_compute_llama3_parameters</c>), in double precision.
    /// </summary>
    public static double[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
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
