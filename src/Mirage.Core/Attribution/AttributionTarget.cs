namespace Mirage.Core.Attribution;

/// <summary>One answer step to explain.</summary>
/// <param name="Position">Index in the input ids of the token being predicted (its logits come from <c>Position - 1</c>).</param>
/// <param name="TokenId">The token at that position (y_t).</param>
/// <param name="ContrastTokenId">A contrast token (y'_t) for contrastive step functions, or null.</param>
public sealed record AttributionTarget(int Position, int TokenId, int? ContrastTokenId = null);
