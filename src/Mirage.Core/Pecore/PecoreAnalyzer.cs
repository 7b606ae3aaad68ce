using System.Diagnostics;
using Mirage.Core.Attribution;
using Mirage.Core.Attribution.StepFunctions;
using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Pecore;

/// <summary>
/// PECoRe (Sarti et al., 2024) over a supplied answer. CTI: teacher-force the answer once with and
/// once without context (two forward passes for every step's score) and select the steps whose
/// contrastive metric stands out. CCI: for each selected step, attribute the MIRAGE target to the
/// with-context input, with the contrast token taken from the no-context pass (whose argmax at
/// step t is exactly the no-context model's greedy choice given the with-context prefix y_&lt;t).
/// Several answers can run together (<see cref="AnalyzeBatch"/>), sharing the CTI passes.
/// </summary>
public sealed class PecoreAnalyzer(AttributionEngine engine)
{
    /// <summary>Checks options against this analyzer's methods and step functions.</summary>
    public void Validate(PecoreOptions options) => options.Validate(engine);

    /// <summary>Runs CTI and CCI for <paramref name="answer"/> after the two prompts.</summary>
    /// <param name="model">The model.</param>
    /// <param name="contextPrompt">Prompt ids with the context.</param>
    /// <param name="noContextPrompt">The same prompt without the context.</param>
    /// <param name="answer">Answer ids (teacher-forced in both settings).</param>
    /// <param name="eligible">Which answer tokens may be selected (special tokens may not).</param>
    /// <param name="options">Settings.</param>
    /// <param name="forcedContrastIds">Contrast tokens to use instead of the no-context argmax (per answer token), or null.</param>
    /// <param name="cancellationToken">Checked between phases and between the attribution method's batches.</param>
    public PecoreResult Analyze(
        LanguageModel model,
        IReadOnlyList<int> contextPrompt,
        IReadOnlyList<int> noContextPrompt,
        IReadOnlyList<int> answer,
        IReadOnlyList<bool> eligible,
        PecoreOptions options,
        IReadOnlyList<int>? forcedContrastIds = null,
        CancellationToken cancellationToken = default) =>
        AnalyzeBatch(model, [new PecoreAnswer(contextPrompt, noContextPrompt, answer, eligible, options, forcedContrastIds)], cancellationToken)[0];

    /// <summary>
    /// Runs PECoRe for several answers: the CTI passes of all of them run as two right-padded
    /// batches (every with-context sequence, then every no-context one), CCI answer by answer.
    /// Each result equals what <see cref="Analyze"/> gives for its input alone, up to
    /// floating-point reordering in the batched passes.
    /// </summary>
    public IReadOnlyList<PecoreResult> AnalyzeBatch(LanguageModel model, IReadOnlyList<PecoreAnswer> inputs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        foreach (var input in inputs)
        {
            input.Options.Validate(engine);
            if (input.ForcedContrastIds is not null && input.ForcedContrastIds.Count != input.Answer.Count)
                throw new MirageException($"Forced contrast tokens: expected one per answer token ({input.Answer.Count}), got {input.ForcedContrastIds.Count}.");
        }
        var clock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        // CTI: at most two teacher-forced passes (one batch each), whatever the batch size.
        var contextLogits = Fill(model, inputs, i => i.ContextLogits, i => i.ContextPrompt);       // [N_b, V] each
        var noContextLogits = Fill(model, inputs, i => i.NoContextLogits, i => i.NoContextPrompt);
        var passTime = clock.Elapsed;
        cancellationToken.ThrowIfCancellationRequested();
        return inputs.Select((input, b) => AnalyzeOne(model, input, contextLogits[b], noContextLogits[b], passTime, cancellationToken)).ToList();
    }

    // The logits each input brings, and one batched pass for those that bring none.
    private static List<Tensor> Fill(LanguageModel model, IReadOnlyList<PecoreAnswer> inputs, Func<PecoreAnswer, Tensor?> given, Func<PecoreAnswer, IReadOnlyList<int>> prompt)
    {
        var missing = model.TeacherForceLogits(inputs.Where(i => given(i) is null).Select(i => (prompt(i), i.Answer)).ToList());
        int next = 0;
        return inputs.Select(i => given(i) ?? missing[next++]).ToList();
    }

    private PecoreResult AnalyzeOne(LanguageModel model, PecoreAnswer input, Tensor contextLogits, Tensor noContextLogits, TimeSpan passTime, CancellationToken cancellationToken)
    {
        var (contextPrompt, _, answer, eligible, options, forcedContrastIds, runCci, _, _, budget) = input;
        var clock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var targets = tensor(answer.Select(i => (long)i).ToArray(), device: model.Device);
        var metricFunction = engine.StepFunctions.Get(options.CtiMetric);
        var metric = TokenLogProbs.ByRows(contextLogits, (start, count) => metricFunction(new StepFunctionArgs(contextLogits.narrow(0, start, count), targets.narrow(0, start, count), null,
            noContextLogits.narrow(0, start, count), options.KlDirection)));
        var scores = metric.to(ScalarType.Float64).cpu().data<double>().ToArray();
        var contrastIds = forcedContrastIds?.ToArray() ?? noContextLogits.argmax(-1).cpu().data<long>().ToArray().Select(i => (int)i).ToArray();
        double[] LogProbs(Tensor logits) => TokenLogProbs.Of(logits, targets).to(ScalarType.Float64).cpu().data<double>().ToArray();
        var contextLogProbs = LogProbs(contextLogits);
        var noContextLogProbs = LogProbs(noContextLogits);

        var eligibleScores = scores.Where((_, i) => eligible[i]).ToList();
        double threshold = TokenSelection.MeanStdThreshold(eligibleScores, options.CtiStdThreshold, options.CtiStdDdof);
        var selected = TokenSelection.Select(scores, eligible, threshold, options.CtiTopK);
        var ctiTime = passTime + clock.Elapsed;
        cancellationToken.ThrowIfCancellationRequested();

        // CCI: attribute the MIRAGE target of each selected step to the with-context input.
        clock.Restart();
        var steps = runCci ? Enumerable.Range(0, answer.Count).Where(i => selected[i]).ToArray() : [];
        var cciScores = new Dictionary<int, float[]>();
        var cciValues = new Dictionary<int, double>();
        int forwards = (input.ContextLogits is null ? 1 : 0) + (input.NoContextLogits is null ? 1 : 0), backwards = 0;
        if (steps.Length > 0)
        {
            var ids = contextPrompt.Concat(answer).ToArray();
            long cost = engine.Methods.Get(options.CciMethod).TokenPasses(ids.Length, steps.Length, options.Attribution);
            if (cost > budget)
                throw new CitationBudgetExceededException(
                    $"CCI by {options.CciMethod} on the {steps.Length} answer tokens CTI selected (of {answer.Count}), over {ids.Length} input tokens, would take up to {cost:N0} token-passes, "
                    + $"more than the {budget:N0} left of the request's budget: choose a cheaper method (ablation, saliency), raise cti_std or set cti_top_k, or shorten the input.");
            var attributionTargets = steps.Select(t => new AttributionTarget(contextPrompt.Count + t, answer[t], contrastIds[t])).ToList();
            // Where the contrast equals the answer token, the contrast term is the no-context
            // log-probability: a constant row from the second pass, carrying no gradient.
            var same = tensor(steps.Select(t => contrastIds[t] == answer[t]).ToArray(), device: model.Device);
            var noContextRows = noContextLogits.index_select(0, tensor(steps.Select(t => (long)t).ToArray(), device: model.Device));
            Tensor Contrast(Tensor logits, IReadOnlyList<int> indices)
            {
                var index = tensor(indices.Select(i => (long)i).ToArray(), device: model.Device);
                return where(same.index_select(0, index).unsqueeze(1), noContextRows.index_select(0, index).to(logits.dtype), logits);
            }
            var result = engine.Attribute(model, options.CciMethod,
                new AttributionRequest(ids, attributionTargets, options.CciTarget, options.Attribution, Contrast, options.KlDirection, cancellationToken));
            for (int i = 0; i < steps.Length; i++)
            {
                cciScores[steps[i]] = result.Scores[i][..contextPrompt.Count];
                cciValues[steps[i]] = result.TargetValues[i];
            }
            forwards += result.ForwardPasses;
            backwards += result.BackwardPasses;
        }
        return new PecoreResult(scores, selected, threshold, contrastIds, contextLogProbs, noContextLogProbs, cciScores, cciValues, forwards, backwards, ctiTime, clock.Elapsed);
    }
}
