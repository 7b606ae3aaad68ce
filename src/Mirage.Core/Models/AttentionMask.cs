using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// Builds the additive attention mask <c>[B, 1, T, S]</c>: 0 where a query may attend to a key,
/// the dtype's most negative value elsewhere (not -inf, so rows that see nothing, such as left
/// padding, stay finite instead of turning into NaN).
/// </summary>
internal static class AttentionMask
{
    /// <summary>
    /// Whether attention can go without an explicit mask: no padding, no window, and either one new
    /// token (it sees every key) or a fresh causal pass (SDPA's <c>is_causal</c>, which also lets
    /// the CPU use its fused kernel instead of materialising the mask).
    /// </summary>
    public static bool IsImplicit(long newTokens, int cached, Tensor? keyMask, int? window) =>
        keyMask is null && window is null && (newTokens == 1 || cached == 0);

    /// <param name="x">The new tokens' embeddings <c>[B, T, C]</c> (for batch, length, dtype, device).</param>
    /// <param name="cached">How many key slots precede the new tokens.</param>
    /// <param name="keyMask">Real (true) vs padding (false) key slots <c>[B, S]</c>, or null.</param>
    /// <param name="window">Sliding window: a query sees only keys fewer than this many slots back.</param>
    public static Tensor Build(Tensor x, int cached, Tensor? keyMask, int? window)
    {
        using var scope = NewDisposeScope();
        long t = x.shape[1], s = cached + t;
        var queries = TorchScalars.Range(cached, s, x.device).unsqueeze(1); // [T, 1]
        var keys = TorchScalars.Range(s, x.device).unsqueeze(0);            // [1, S]
        var allowed = keys <= queries;                                      // [T, S] causal
        if (window is int w)
        {
            using var reach = w.ToScalar();
            allowed = allowed & (queries - keys).lt(reach);
        }
        var full = allowed.unsqueeze(0).unsqueeze(0);                   // [1, 1, T, S]
        if (keyMask is not null)
            full = full & keyMask.to(ScalarType.Bool).unsqueeze(1).unsqueeze(1); // [B, 1, T, S]
        using var blocked = MinValue(x.dtype).ToScalar();
        var mask = zeros(full.shape, x.dtype, x.device).masked_fill(full.logical_not(), blocked);
        return mask.MoveToOuterDisposeScope();
    }

    private static double MinValue(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => double.MinValue,
        ScalarType.BFloat16 => -3.3895313892515355e38,
        ScalarType.Float16 => -65504.0,
        _ => float.MinValue,
    };
}
