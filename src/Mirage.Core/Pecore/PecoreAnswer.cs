namespace Mirage.Core.Pecore;

/// <summary>One answer for <see cref="PecoreAnalyzer"/>: the prompt with and without context, the answer and the settings.</summary>
/// <param name="ContextPrompt">Prompt ids with the context.</param>
/// <param name="NoContextPrompt">The same prompt without the context.</param>
/// <param name="Answer">Answer ids (teacher-forced in both settings).</param>
/// <param name="Eligible">Which answer tokens may be selected (special tokens may not).</param>
/// <param name="Options">Settings.</param>
/// <param name="ForcedContrastIds">Contrast tokens to use instead of the no-context argmax (per answer token), or null.</param>
/// <param name="RunCci">False to stop after CTI (a citer that does not read CCI).</param>
/// <param name="ContextLogits">
/// The with-context teacher-forced logits <c>[N, V]</c> when another pass already computed them (passage
/// ablation's full pass, which also fills its KV cache), or null to run that pass here. Not disposed here.
/// </param>
/// <param name="NoContextLogits">The no-context teacher-forced logits <c>[N, V]</c> when the caller ran that pass, or null to run it here. Not disposed here.</param>
/// <param name="MaxCciTokenPasses">
/// CCI's budget in token-passes (see <see cref="Attribution.IAttributionMethod.TokenPasses"/>): once CTI
/// has selected its tokens, CCI that would take more is refused before it starts. Null: no bound.
/// </param>
public sealed record PecoreAnswer(
    IReadOnlyList<int> ContextPrompt,
    IReadOnlyList<int> NoContextPrompt,
    IReadOnlyList<int> Answer,
    IReadOnlyList<bool> Eligible,
    PecoreOptions Options,
    IReadOnlyList<int>? ForcedContrastIds = null,
    bool RunCci = true,
    TorchSharp.torch.Tensor? ContextLogits = null,
    TorchSharp.torch.Tensor? NoContextLogits = null,
    long? MaxCciTokenPasses = null);

