using Mirage.Core.Citations;
using Mirage.Core.Models;

namespace Mirage.Core.Integration;

/// <summary>
/// The one place the filter and the middleware cite an answer: it runs the citation engine
/// within the configured timeout and turns every failure into a result with a reason (or, when
/// <see cref="MirageCitationOptions.Strict"/>, an exception), so the app's answer is never lost.
/// </summary>
public sealed class MirageCitationService
{
    private readonly ICitationEngine _engine;

    /// <summary>
    /// Creates the service over an engine whose model is <paramref name="attributionModelId"/>;
    /// <paramref name="readers"/> read the result types of retrieval libraries into passages.
    /// </summary>
    public MirageCitationService(ICitationEngine engine, string attributionModelId, MirageCitationOptions? options = null, IEnumerable<IPassageReader>? readers = null)
    {
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        AttributionModelId = attributionModelId ?? throw new ArgumentNullException(nameof(attributionModelId));
        Options = options ?? new MirageCitationOptions();
        Extractor = new PassageExtractor(Options.Mapping, readers);
    }

    /// <summary>The settings.</summary>
    public MirageCitationOptions Options { get; }

    /// <summary>The local model that computes citations.</summary>
    public string AttributionModelId { get; }

    /// <summary>Reads passages out of retrieval results.</summary>
    public PassageExtractor Extractor { get; }

    /// <summary>
    /// Cites <paramref name="answer"/> against <paramref name="passages"/>. The mode is faithful when
    /// <paramref name="answerModelId"/> is the attribution model, proxy otherwise (also when unknown).
    /// <paramref name="citationOptions"/> replaces the engine options built from <see cref="Options"/>
    /// for this call (a request that brings its own filter or thresholds). <paramref name="answerTokenIds"/>,
    /// the ids the attribution model generated for the answer, are cited as they are (see <see cref="CitationRequest.AnswerTokenIds"/>).
    /// <paramref name="trace"/>, that generation's trace (<see cref="CitationRequest.Trace"/>), is the
    /// service's to dispose: it goes once the engine is done with it, also when a timeout returned first.
    /// </summary>
    public async Task<AnswerCitations> CiteAsync(string question, IReadOnlyList<Passage> passages, string answer, string? answerModelId,
        CitationOptions? citationOptions = null, IReadOnlyList<int>? answerTokenIds = null, GenerationTrace? trace = null, CancellationToken cancellationToken = default)
    {
        var mode = answerModelId == AttributionModelId ? CitationMode.Faithful : CitationMode.Proxy;
        var kept = passages.ToList();
        AnswerCitations Empty(CitationStatus status, string reason, Exception? error = null)
        {
            trace?.Dispose();
            if (Options.Strict)
                throw error is null ? new MirageCitationException(status, reason) : new MirageCitationException(status, reason, error);
            return new AnswerCitations(status, reason, mode, AttributionModelId, answerModelId, answer ?? "", kept, []);
        }

        if (string.IsNullOrWhiteSpace(answer))
            return Empty(CitationStatus.EmptyAnswer, "The answer is empty: there is nothing to cite.");
        // Citing only the first passages would call the answer cited while the support may lie in the rest.
        if (kept.Count > Options.MaxPassages)
            return Empty(CitationStatus.TooManyPassages, $"{kept.Count} passages were retrieved; at most {Options.MaxPassages} are cited (MirageCitationOptions.MaxPassages): raise the limit or retrieve fewer.");
        if (kept.Count == 0)
            return Empty(CitationStatus.NoPassages, "No retrieval results were seen in this request, so there is nothing to cite; check which functions count as retrieval (MirageCitationOptions.RetrievalPlugins/RetrievalFunctions).");

        var timeout = TimeSpan.FromSeconds(Options.TimeoutSeconds);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        var options = citationOptions ?? CitationSettingNames.Apply(new CitationOptions { Method = Options.Method },
            verify: Options.Verify, topPercent: Options.TopPercent, atMostCitations: Options.AtMostCitations);
        var work = _engine.CiteAsync(new CitationRequest(question ?? "", kept, answer, options, answerTokenIds) { Trace = trace }, limit.Token);
        // The engine may still read the trace after a timeout returns: it goes when the engine is done.
        var lent = trace;
        trace = null;
        _ = work.ContinueWith(_ => lent?.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        try
        {
            // WaitAsync returns on time even if the engine is slow to notice the cancellation.
            var result = await work.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            return new AnswerCitations(CitationStatus.Cited, null, mode, AttributionModelId, answerModelId, answer, kept, result.Sentences) { Details = result };
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            // The wait can end a moment before the limit's own timer fires, and the limit is disposed on
            // return, which would leave the engine running: cancel it here, so it stops at its next check.
            await limit.CancelAsync().ConfigureAwait(false);
            _ = work.ContinueWith(static t => t.Exception, TaskScheduler.Default);
            return Empty(CitationStatus.TimedOut, $"Citations took longer than the {timeout.TotalSeconds:0.###} s timeout (MirageCitationOptions.TimeoutSeconds); the answer went out without them.", e);
        }
        catch (ContextLengthExceededException e)
        {
            return Empty(CitationStatus.TooLong, e.Message, e);
        }
        catch (CitationBudgetExceededException e)
        {
            return Empty(CitationStatus.OverBudget, e.Message, e);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return Empty(CitationStatus.Failed, $"Attribution failed: {e.Message}", e);
        }
    }
}
