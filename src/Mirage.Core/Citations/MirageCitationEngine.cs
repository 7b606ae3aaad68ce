using System.Diagnostics;
using Mirage.Core.Attribution;
using Mirage.Core.Context;
using Mirage.Core.Models;
using Mirage.Core.Tokenization;

namespace Mirage.Core.Citations;

/// <summary>
/// MIRAGE (Qi, Sarti et al., 2024): answer-sentence citations from the model's internals. It
/// renders the prompt with and without the passages, runs PECoRe on the answer (CTI then CCI), and
/// turns the context cues of each sentence's selected tokens into passage citations. Calls are
/// serialised, because one model serves one computation at a time.
/// </summary>
public sealed class MirageCitationEngine : ICitationEngine
{
    private readonly LanguageModel _model;
    private readonly PecoreAnalyzer _pecore;
    private readonly CitationOptions _defaults;
    private readonly SemaphoreSlim _gate = new(1, 1);

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
    public async Task<CitationResult> CiteAsync(CitationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var options = request.Options ?? _defaults;
        options.Validate();
        _pecore.Validate(options.Pecore);
        var passages = CheckRequest(request);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await Task.Run(() => Cite(request, passages, options, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private CitationResult Cite(CitationRequest request, IReadOnlyList<Passage> passages, CitationOptions options, CancellationToken cancellationToken)
    {
        var total = Stopwatch.StartNew();
        var tokenizer = _model.Tokenizer;
        var withContext = options.Prompt.Render(request.Question, passages, withContext: true, tokenizer.ChatTemplate);
        var withoutContext = options.Prompt.Render(request.Question, passages, withContext: false, tokenizer.ChatTemplate);
        // A chat template writes its own BOS; a plain prompt gets the tokenizer's.
        var promptTokens = tokenizer.Encode(withContext.Text, addSpecialTokens: !withContext.IsChat);
        var promptIds = promptTokens.Select(t => t.Id).ToArray();
        var noContextIds = tokenizer.EncodeIds(withoutContext.Text, addSpecialTokens: !withoutContext.IsChat);
        var answerTokens = tokenizer.EncodeContinuation(request.Answer, afterSpace: !withContext.IsChat);
        var answerIds = answerTokens.Select(t => t.Id).ToArray();
        int length = promptIds.Length + answerIds.Length;
        if (length > _model.ContextLength)
            throw new MirageException(
                $"The prompt with its {passages.Count} passages ({promptIds.Length} tokens) plus the answer ({answerIds.Length} tokens) is {length} tokens, "
                + $"{length - _model.ContextLength} more than {_model.ModelId}'s {_model.ContextLength}-token context. Shorten or drop passages.");
        var passageSpans = LocatePassages(passages, withContext, promptTokens);
        var special = tokenizer.SpecialTokens.Values.ToHashSet();
        var eligible = answerIds.Select(id => !special.Contains(id)).ToArray();
        var tokenizeTime = total.Elapsed;

        var pecore = _pecore.Analyze(_model, promptIds, noContextIds, answerIds, eligible, options.Pecore, cancellationToken: cancellationToken);

        var citationClock = Stopwatch.StartNew();
        var sentences = SentenceSplitter.Split(request.Answer);
        var sentenceOf = AssignSentences(request.Answer, answerTokens, sentences);
        var tokens = answerTokens.Select((t, i) => new AnswerToken(
            i, t.Id, request.Answer[t.Start..t.End], t.Start, t.End, pecore.CtiScores[i], pecore.Selected[i],
            pecore.ContrastIds[i], tokenizer.Decode([pecore.ContrastIds[i]], skipSpecialTokens: false), sentenceOf[i], !eligible[i])).ToList();
        var cited = CitationBuilder.Build(sentences, tokens, pecore.CciScores, passageSpans, options);
        var cues = pecore.CciScores.OrderBy(c => c.Key).Select(c => new ContextCues(c.Key, pecore.CciTargetValues[c.Key], c.Value)).ToList();

        var inputs = new AttributionInputs(
            promptIds.Concat(answerIds).ToArray(), noContextIds.Concat(answerIds).ToArray(),
            promptIds.Length, noContextIds.Length, withContext.Text,
            promptTokens.Select(t => new[] { t.Start, t.End }).ToList());
        var cost = new CitationCost(pecore.ForwardPasses, pecore.BackwardPasses, tokenizeTime.TotalMilliseconds,
            pecore.CtiTime.TotalMilliseconds, pecore.CciTime.TotalMilliseconds, citationClock.Elapsed.TotalMilliseconds, total.Elapsed.TotalMilliseconds);
        return new CitationResult(_model.ModelId, request.Question, request.Answer, cited, tokens, passageSpans, cues, inputs, pecore.Threshold, options, cost);
    }

    private static IReadOnlyList<Passage> CheckRequest(CitationRequest request)
    {
        if (string.IsNullOrWhiteSpace(request.Answer))
            throw new MirageException("The answer is empty: there is nothing to cite.");
        if (request.Question is null)
            throw new MirageException("The question is missing (an empty string is allowed).");
        if (request.Passages is null || request.Passages.Count == 0)
            throw new MirageException("No passages were given: citations need at least one passage.");
        var normalized = request.Passages.Select((p, i) => p with { Id = string.IsNullOrWhiteSpace(p.Id) ? (i + 1).ToString() : p.Id }).ToList();
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

    // A prompt token belongs to the passage whose rendered block contains its first character.
    private static IReadOnlyList<PassageSpan> LocatePassages(IReadOnlyList<Passage> passages, RenderedPrompt prompt, IReadOnlyList<TextToken> tokens)
    {
        var spans = new List<PassageSpan>();
        for (int p = 0; p < passages.Count; p++)
        {
            var (start, end) = prompt.PassageRanges[p];
            var inside = Enumerable.Range(0, tokens.Count).Where(j => tokens[j].Start >= start && tokens[j].Start < end && j > 0).ToList();
            if (inside.Count == 0)
                throw new MirageException($"Passage {p + 1} produced no tokens in the prompt.");
            spans.Add(new PassageSpan(passages[p].Id!, p, passages[p].Title, passages[p].Url, inside[0], inside[^1] + 1));
        }
        return spans;
    }

    // Each token goes to the sentence holding its first character; whitespace-only and empty
    // tokens stay with the token before them.
    private static int[] AssignSentences(string answer, IReadOnlyList<TextToken> tokens, IReadOnlyList<SentenceSpan> sentences)
    {
        var result = new int[tokens.Count];
        int current = 0;
        for (int i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (token.End > token.Start && !string.IsNullOrWhiteSpace(answer[token.Start..token.End]))
            {
                while (current + 1 < sentences.Count && sentences[current + 1].Start <= token.Start)
                    current++;
            }
            result[i] = current;
        }
        return result;
    }
}
