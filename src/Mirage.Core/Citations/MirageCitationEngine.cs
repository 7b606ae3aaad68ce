using System.Diagnostics;
using Mirage.Core.Attribution;
using Mirage.Core.Flow;
using Mirage.Core.Models;
using Mirage.Core.Pecore;

namespace Mirage.Core.Citations;

/// <summary>
/// MIRAGE (Qi, Sarti et al., 2024): answer-sentence citations from the model's internals. It
/// renders the prompt with and without the passages, runs PECoRe on the answer (CTI then CCI), and
/// turns the context cues of each sentence's selected tokens into passage citations; or, with
/// <see cref="CitationMethod.Ablation"/>, cites the passages whose removal takes the selected
/// tokens' support away, or with <see cref="CitationMethod.Routes"/> the passages the sentence's
/// information-flow routes start from. Either can be verified by ablation (<see cref="CitationOptions.Verify"/>). An
/// answer Mirage generated can bring its generation's trace (<see cref="CitationRequest.Trace"/>),
/// which replaces the pass over prompt and answer. Calls are
/// serialised through the model's <see cref="LanguageModel.ComputeGate"/>; several requests can
/// share one call (<see cref="CiteBatchAsync"/>).
/// </summary>
public sealed class MirageCitationEngine : ICitationEngine
{
    private readonly LanguageModel _model;
    private readonly PecoreAnalyzer _pecore;
    private readonly CitationOptions _defaults;

    /// <summary>Creates an engine over a loaded model.</summary>
    /// <param name="model">The attribution model (the answer's generator, or a local proxy for it).</param>
    /// <param name="attribution">Methods and step functions; null for the built-in ones.</param>
    /// <param name="defaults">Options for requests that bring none.</param>
    public MirageCitationEngine(LanguageModel model, AttributionEngine? attribution = null, CitationOptions? defaults = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _pecore = new PecoreAnalyzer(attribution ?? AttributionEngine.CreateDefault());
        _defaults = defaults ?? new CitationOptions();
        _defaults.Validate();
    }

    /// <inheritdoc />
    public async Task<CitationResult> CiteAsync(CitationRequest request, CancellationToken cancellationToken = default) =>
        (await CiteBatchAsync([request], cancellationToken).ConfigureAwait(false))[0];

    /// <summary>
    /// Cites several requests together: their CTI passes run as two right-padded batches (on a GPU,
    /// one pass for many answers costs about what one answer costs), then CCI or ablation request by request. Each
    /// result equals what <see cref="CiteAsync"/> gives for the request alone, up to floating-point
    /// reordering. Every request is checked first; an invalid one fails the whole call.
    /// </summary>
    public async Task<IReadOnlyList<CitationResult>> CiteBatchAsync(IReadOnlyList<CitationRequest> requests, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        var checkedRequests = requests.Select(request =>
        {
            ArgumentNullException.ThrowIfNull(request);
            var options = request.Options ?? _defaults;
            options.Validate();
            _pecore.Validate(options.Pecore);
            if (options.NeedsInternals && _model.Engine == ModelEngine.LlamaCpp)
                throw new MirageException($"Method '{options.MethodName}' needs gradients, attention weights or decomposed passes, which the llama.cpp engine running {_model.ModelId} does not compute; use method 'ablation', or load the model with engine torch.");
            return (Request: request, Passages: CheckRequest(request), Options: options);
        }).ToList();
        if (checkedRequests.Count == 0)
            return [];
        await _model.ComputeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await Task.Run(() => Cite(checkedRequests, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _model.ComputeGate.Release();
        }
    }

    /// <summary>
    /// Why answer sentence <paramref name="sentence"/> (or answer token <paramref name="token"/>;
    /// exactly one) rests on the passages: its information-flow routes, each passage's route share
    /// and the logit lens (<see cref="PassageRoutes"/>), on the same input a citation sees. Needs the
    /// torch engine.
    /// </summary>
    public Task<PassageRoutes> TraceRoutesAsync(CitationRequest request, int? sentence, int? token, double threshold = RouteTracer.DefaultThreshold, CancellationToken cancellationToken = default) =>
        WithPreparedAsync(request, prepared => PassageRoutes.Trace(_model, prepared, sentence, token, threshold, cancellationToken), cancellationToken);

    /// <summary>
    /// The routes of every answer token on its own (<see cref="PassageRoutes.TraceEveryToken"/>), for a
    /// report that shows any token's routes when it is clicked; one decomposed pass. <paramref name="progress"/>
    /// hears how many tokens are traced.
    /// </summary>
    public Task<IReadOnlyList<PassageRoutes>> TraceEveryTokenAsync(CitationRequest request, double threshold = RouteTracer.DefaultThreshold,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        WithPreparedAsync(request, prepared => PassageRoutes.TraceEveryToken(_model, prepared, threshold, progress, cancellationToken), cancellationToken);

    // Checks a request, prepares its prompt and answer as citing would, and runs work on them under the model's gate.
    private async Task<T> WithPreparedAsync<T>(CitationRequest request, Func<PreparedCitation, T> work, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var options = request.Options ?? _defaults;
        options.Validate();
        var passages = CheckRequest(request);
        await _model.ComputeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await Task.Run(() => work(PreparedCitation.Prepare(_model, request.Question, passages, request.Answer, options.Prompt, request.AnswerTokenIds)), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _model.ComputeGate.Release();
        }
    }

    private List<CitationResult> Cite(IReadOnlyList<(CitationRequest Request, IReadOnlyList<Passage> Passages, CitationOptions Options)> requests, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var inputs = requests.Select(r => PreparedCitation.Prepare(_model, r.Request.Question, r.Passages, r.Request.Answer, r.Options.Prompt, r.Request.AnswerTokenIds)).ToList();
        var tokenizeTime = clock.Elapsed / requests.Count;
        // Work past a request's budget is refused before any pass: ablation's and verification's
        // bound now, CCI's (which depends on the tokens CTI selects) in PECoRe, with what is left.
        var cciBudgets = requests.Select((r, i) =>
        {
            if (r.Options.MaxTokenPasses is not { } budget)
                return (long?)null;
            long fixedCost = CitationBudget.Cti(inputs[i]) + CitationBudget.Ablation(inputs[i], r.Passages.Select(p => p.Text).ToList(), r.Options) + CitationBudget.Routes(inputs[i], r.Options);
            CitationBudget.Check(fixedCost, r.Options, $"Citing {Count(inputs[i].Sentences.Count, "sentence")} against {Count(inputs[i].Passages.Count, "passage")} by {r.Options.MethodName}{(r.Options.Verify is null ? "" : " with verification")}");
            return budget - fixedCost;
        }).ToList();
        // Ablation's full pass fills its KV cache and gives CTI its with-context logits, so CTI runs one
        // pass, not two; the trace of the generation that wrote the answer stands in for that pass.
        // CTI's no-context pass runs first, for every request in one batch: on llama.cpp each KV cache
        // is a context of its own, and a second one beside an ablation's would add to the peak memory.
        var ablations = new ContextAblation?[requests.Count];
        var ablationStart = new TimeSpan[requests.Count];
        var traceLogits = new TorchSharp.torch.Tensor?[requests.Count];
        clock.Restart();
        var noContextLogits = _model.TeacherForceLogits(inputs.Select(input => ((IReadOnlyList<int>)input.NoContextIds, (IReadOnlyList<int>)input.AnswerIds)).ToList());
        var noContextTime = clock.Elapsed / requests.Count;
        try
        {
            for (int i = 0; i < requests.Count; i++)
            {
                if (requests[i].Options.Method != CitationMethod.Ablation)
                {
                    traceLogits[i] = TraceLogits(requests[i].Request.Trace, inputs[i]);
                    continue;
                }
                clock.Restart();
                ablations[i] = ContextAblation.Start(_model, inputs[i], requests[i].Request.Question, requests[i].Passages, requests[i].Options.Prompt, keepLogits: true,
                    trace: requests[i].Request.Trace);
                ablationStart[i] = clock.Elapsed;
            }
            var pecore = _pecore.AnalyzeBatch(_model,
                inputs.Select((input, i) => new PecoreAnswer(input.PromptIds, input.NoContextIds, input.AnswerIds, input.Eligible, requests[i].Options.Pecore,
                    RunCci: requests[i].Options.Method == CitationMethod.Cci, ContextLogits: ablations[i]?.FullLogits ?? traceLogits[i], NoContextLogits: noContextLogits[i],
                    MaxCciTokenPasses: cciBudgets[i])).ToList(),
                cancellationToken);
            // CTI has read the logits; the ablation rounds that follow need only their own passes.
            for (int i = 0; i < requests.Count; i++)
            {
                noContextLogits[i].Dispose();
                ablations[i]?.ReleaseFullLogits();
                traceLogits[i]?.Dispose();
            }
            return requests.Select((r, i) =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                var cti = pecore[i] with { ForwardPasses = pecore[i].ForwardPasses + 1, CtiTime = pecore[i].CtiTime + noContextTime };
                return Result(r.Request, r.Passages, r.Options, inputs[i], cti, tokenizeTime, ablations[i], ablationStart[i], cancellationToken);
            }).ToList();
        }
        finally
        {
            foreach (var logits in noContextLogits)
                logits.Dispose();
            foreach (var ablation in ablations)
                ablation?.Dispose();
            foreach (var logits in traceLogits)
                logits?.Dispose();
        }
    }

    // `started`: the ablation runner of an ablation request, whose full pass took `startTime`; a
    // request that only verifies starts its own here.
    private CitationResult Result(CitationRequest request, IReadOnlyList<Passage> passages, CitationOptions options, PreparedCitation input, PecoreResult pecore, TimeSpan tokenizeTime,
        ContextAblation? started, TimeSpan startTime, CancellationToken cancellationToken)
    {
        var citationClock = Stopwatch.StartNew();
        var tokenizer = _model.Tokenizer;
        var answerTokens = input.AnswerTokens;
        var tokens = answerTokens.Select((t, i) => new AnswerToken(
            i, t.Id, request.Answer[t.Start..t.End], t.Start, t.End, pecore.CtiScores[i], pecore.Selected[i],
            pecore.ContrastIds[i], tokenizer.Decode([pecore.ContrastIds[i]], skipSpecialTokens: false), input.SentenceOf[i], !input.Eligible[i])).ToList();
        IReadOnlyList<CitedSentence> cited;
        IReadOnlyList<SentenceAblation>? measured = null;
        int ablationPasses = 0;
        var ablationClock = Stopwatch.StartNew();
        using (var own = started is null && options.Verify is not null ? ContextAblation.Start(_model, input, request.Question, passages, options.Prompt, trace: request.Trace) : null)
        {
            var ablation = started ?? own;
            if (options.Method == CitationMethod.Ablation)
                (cited, measured) = AblationCitations.Build(ablation!, input.Sentences, tokens, pecore.NoContextLogProbs, input.Passages,
                    passages.Select(p => p.Text).ToList(), options, cancellationToken);
            else if (options.Method == CitationMethod.Routes)
                cited = RouteCitations.Build(_model, input, options, cancellationToken);
            else
                cited = CitationBuilder.Build(input.Sentences, tokens, pecore.CciScores, input.Passages, options);
            if (options.Verify is not null)
                cited = CitationVerifier.Verify(ablation!, cited, tokens, options, cancellationToken);
            ablationPasses = ablation?.ForwardPasses ?? 0;
        }
        // With ablation passes, the section above (and the full pass before CTI) is ablation time; without, citation time.
        var ablationSection = ablationPasses == 0 ? TimeSpan.Zero : ablationClock.Elapsed;
        double ablationMs = ablationPasses == 0 ? 0 : (ablationSection + startTime).TotalMilliseconds;
        var cues = pecore.CciScores.OrderBy(c => c.Key).Select(c => new ContextCues(c.Key, pecore.CciTargetValues[c.Key], c.Value)).ToList();

        var inputs = new ModelInputs(
            input.SequenceIds, input.NoContextIds.Concat(input.AnswerIds).ToArray(),
            input.PromptIds.Length, input.NoContextIds.Length, input.WithContext.Text,
            input.PromptTokens.Select(t => new[] { t.Start, t.End }).ToList());
        double citationMs = (citationClock.Elapsed - ablationSection).TotalMilliseconds;
        double totalMs = tokenizeTime.TotalMilliseconds + pecore.CtiTime.TotalMilliseconds + pecore.CciTime.TotalMilliseconds + ablationMs + citationMs;
        var cost = new CitationCost(pecore.ForwardPasses + ablationPasses, pecore.BackwardPasses, tokenizeTime.TotalMilliseconds,
            pecore.CtiTime.TotalMilliseconds, pecore.CciTime.TotalMilliseconds, citationMs, totalMs) { AblationMs = ablationMs };
        return new CitationResult(_model.ModelId, request.Question, request.Answer, cited, tokens, input.Passages, cues, inputs, pecore.Threshold, options, cost)
        {
            ModelSource = _model.SourceFormat,
            Engine = ModelEngines.NameOf(_model.Engine),
            Ablation = measured,
        };
    }

    // The generation's logits over the answer, when it wrote exactly this input's answer after this prompt: CTI's with-context pass.
    private static TorchSharp.torch.Tensor? TraceLogits(GenerationTrace? trace, PreparedCitation input) =>
        trace is not null && trace.Covers(input.PromptIds, input.AnswerIds) ? trace.Logits.narrow(0, 0, input.AnswerIds.Length) : null;

    private static string Count(int n, string noun) => $"{n} {noun}{(n == 1 ? "" : "s")}";

    private static IReadOnlyList<Passage> CheckRequest(CitationRequest request)
    {
        if (string.IsNullOrWhiteSpace(request.Answer))
            throw new MirageException("The answer is empty: there is nothing to cite.");
        if (request.Question is null)
            throw new MirageException("The question is missing (an empty string is allowed).");
        if (request.Passages is null || request.Passages.Count == 0)
            throw new MirageException("No passages were given: citations need at least one passage.");
        var normalized = request.Passages.Select((p, i) => p with { Id = string.IsNullOrWhiteSpace(p.Id) ? (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) : p.Id }).ToList();
        for (int i = 0; i < normalized.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(normalized[i].Text))
                throw new MirageException($"Passage {i + 1} (id '{normalized[i].Id}') has no text.");
            for (int j = 0; j < i; j++)
            {
                if (normalized[j].Id == normalized[i].Id)
                    throw new MirageException($"Passages {j + 1} and {i + 1} share the id '{normalized[i].Id}'; ids must be unique.");
                if (normalized[j].Text.Trim() == normalized[i].Text.Trim())
                    throw new MirageException($"Passages {j + 1} and {i + 1} have the same text; remove the duplicate (the two copies would split the credit).");
            }
        }
        return normalized;
    }
}
