using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Citations;

/// <summary>
/// The answer's log-probabilities with only some of the passages in the prompt (ContextCite's
/// ablations), forward passes only, with AttriBoT's trick: everything before the first removed
/// passage is the full prompt's, so the full input's KV cache is computed once and each ablated
/// input runs only from where it differs. Batches of masks run in the order that keeps the most
/// of the cache valid (longest shared prefix first). The cache is an <see cref="ICachedSequence"/>,
/// so the model's engine (TorchSharp or llama.cpp) runs it. Not thread-safe; hold the model's
/// compute gate while using it.
/// </summary>
public sealed class ContextAblation : IDisposable
{
    private readonly LanguageModel _model;
    private readonly PreparedCitation _input;
    private readonly IReadOnlyList<Passage> _passages;
    private readonly Func<IReadOnlyList<Passage>, CancellationToken, int[]> _promptIds;
    private readonly ICachedSequence? _sequence;
    private readonly bool _ownsSequence = true;
    private readonly Dictionary<string, double[]> _scored = [];
    private int _validPrefix;
    private readonly bool _keepLogits;

    private ContextAblation(LanguageModel model, PreparedCitation input, IReadOnlyList<Passage> passages, Func<IReadOnlyList<Passage>, CancellationToken, int[]> promptIds, bool reuseCache, bool keepLogits,
        GenerationTrace? trace)
    {
        _keepLogits = keepLogits;
        _model = model;
        _input = input;
        _passages = passages;
        _promptIds = promptIds;
        PassageCount = input.Passages.Count;
        var borrowed = reuseCache && trace is not null && trace.Covers(input.PromptIds, input.AnswerIds) ? trace.BorrowSequence() : null;
        if (borrowed is not null)
        {
            // The generation that wrote the answer ran this pass already: its sequence holds the prompt,
            // and its logits predicted the answer's tokens.
            _sequence = borrowed;
            _ownsSequence = false;
            _sequence.Rewind(input.PromptIds.Length);
            _validPrefix = input.PromptIds.Length;
            using var scope = NewDisposeScope();
            var logits = trace!.Logits.narrow(0, 0, input.AnswerIds.Length);                 // [A, V]
            Full = LogProbs(logits);
            if (keepLogits)
                FullLogits = logits.DetachFromDisposeScope();
        }
        else if (reuseCache)
        {
            // An ablated prompt is never longer than the full one (it only loses text), so this always fits.
            _sequence = model.NewSequence(input.PromptIds.Length + input.AnswerIds.Length);
            Full = Continue(input.PromptIds, 0);
            _validPrefix = input.PromptIds.Length;
        }
        else
        {
            Full = Whole(input.PromptIds);
        }
        _scored[Key(Enumerable.Repeat(true, PassageCount).ToArray())] = Full;
    }

    /// <summary>
    /// Starts ablating <paramref name="input"/> (prepared from <paramref name="passages"/>, which
    /// carry ids, with <paramref name="template"/>): runs the full input once.
    /// <paramref name="reuseCache"/> false runs every ablated input whole, the reference the cached path must equal;
    /// <paramref name="keepLogits"/> keeps the full pass's logits (<see cref="FullLogits"/>) for CTI to reuse;
    /// <paramref name="trace"/>, the generation that wrote the answer, replaces the full pass when it
    /// covers this input's prompt and answer and its cache is still unused (<see cref="GenerationTrace"/>).
    /// </summary>
    public static ContextAblation Start(LanguageModel model, PreparedCitation input, string question, IReadOnlyList<Passage> passages, PromptTemplate template,
        bool reuseCache = true, bool keepLogits = false, GenerationTrace? trace = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(input);
        if (passages.Count != input.Passages.Count)
            throw new ArgumentException($"The input has {input.Passages.Count} passages; {passages.Count} were given.", nameof(passages));
        var chat = model.Tokenizer.ChatTemplate;
        int[] Prompt(IReadOnlyList<Passage> shown, CancellationToken cancellationToken)
        {
            var prompt = template.Render(question, shown, withContext: true, chat, cancellationToken);
            return model.Tokenizer.EncodeIds(prompt.Text, addSpecialTokens: !prompt.IsChat);
        }
        return new ContextAblation(model, input, passages, Prompt, reuseCache, keepLogits, trace);
    }

    /// <summary>How many passages the prompt holds.</summary>
    public int PassageCount { get; }

    /// <summary>Per answer token, its log-probability with every passage.</summary>
    public double[] Full { get; }

    /// <summary>With <c>keepLogits</c> on the cached path: the full input's logits predicting each answer token, <c>[A, V]</c>; owned by this runner.</summary>
    public Tensor? FullLogits { get; private set; }

    /// <summary>Frees <see cref="FullLogits"/> once CTI has read them (with a large vocabulary they are tens of MB).</summary>
    public void ReleaseFullLogits()
    {
        FullLogits?.Dispose();
        FullLogits = null;
    }

    /// <summary>Forward passes run so far (the full input counts as one).</summary>
    public int ForwardPasses { get; private set; }

    /// <summary>Tokens those passes processed.</summary>
    public int TokensRun { get; private set; }

    /// <summary>
    /// Per mask (true = the passage stays), per answer token: its log-probability with only the kept
    /// passages in the prompt. A mask seen before is not run again. Cancellation is checked before each pass.
    /// </summary>
    public IReadOnlyList<double[]> Score(IReadOnlyList<bool[]> masks, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(masks);
        foreach (var mask in masks)
        {
            if (mask.Length != PassageCount)
                throw new ArgumentException($"A mask has {mask.Length} entries; the prompt has {PassageCount} passages.", nameof(masks));
        }
        return ScoreVariants(masks.Select(m => (Key(m), (Func<IReadOnlyList<Passage>>)(() => _passages.Where((_, p) => m[p]).ToList()))).ToList(), cancellationToken);
    }

    /// <summary>
    /// Per span, per answer token: its log-probability with that span's characters removed from its
    /// passage's text (every passage kept): hierarchical ablation, a sentence inside a passage.
    /// </summary>
    public IReadOnlyList<double[]> ScoreWithout(IReadOnlyList<(int Passage, int Start, int End)> spans, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spans);
        foreach (var (p, start, end) in spans)
        {
            if (p < 0 || p >= PassageCount || start < 0 || end > _passages[p].Text.Length || start >= end)
                throw new ArgumentException($"Span [{start}, {end}) of passage {p} is not inside one of the {PassageCount} passages' texts.", nameof(spans));
        }
        return ScoreVariants(spans.Select(c => ($"{c.Passage}:{c.Start}:{c.End}", (Func<IReadOnlyList<Passage>>)(() =>
            _passages.Select((passage, p) => p == c.Passage ? passage with { Text = passage.Text[..c.Start] + passage.Text[c.End..] } : passage).ToList()))).ToList(),
            cancellationToken);
    }

    // Scores each keyed variant of the passages not scored before, longest shared prefix first.
    private IReadOnlyList<double[]> ScoreVariants(IReadOnlyList<(string Key, Func<IReadOnlyList<Passage>> Shown)> variants, CancellationToken cancellationToken)
    {
        var pending = variants.DistinctBy(v => v.Key).Where(v => !_scored.ContainsKey(v.Key))
            .Select(v => (v.Key, Ids: _promptIds(v.Shown(), cancellationToken)))
            .Select(m => (m.Key, m.Ids, Shared: SharedPrefix(m.Ids)))
            .OrderByDescending(m => m.Shared)
            .ToList();
        foreach (var (key, ids, shared) in pending)
        {
            cancellationToken.ThrowIfCancellationRequested();
            _scored[key] = _sequence is null ? Whole(ids) : Ablated(ids, shared);
        }
        return variants.Select(v => _scored[v.Key]).ToList();
    }

    /// <summary>The summed log-probability of the answer tokens <paramref name="tokens"/> in <paramref name="logProbs"/>.</summary>
    public static double Sum(double[] logProbs, IEnumerable<int> tokens) => tokens.Sum(t => logProbs[t]);

    /// <summary>A mask keeping every passage except <paramref name="removed"/>.</summary>
    public static bool[] Without(int passages, IEnumerable<int> removed)
    {
        var mask = Enumerable.Repeat(true, passages).ToArray();
        foreach (var p in removed)
            mask[p] = false;
        return mask;
    }

    /// <summary>A mask keeping only <paramref name="kept"/>.</summary>
    public static bool[] Only(int passages, IEnumerable<int> kept)
    {
        var mask = new bool[passages];
        foreach (var p in kept)
            mask[p] = true;
        return mask;
    }

    // Where an ablated prompt first differs from the full one, leaving at least its last token to run
    // (it predicts the first answer token).
    private int SharedPrefix(int[] ids)
    {
        int shared = 0, limit = Math.Min(_input.PromptIds.Length, ids.Length) - 1;
        while (shared < limit && _input.PromptIds[shared] == ids[shared])
            shared++;
        return shared;
    }

    private double[] Ablated(int[] ids, int shared)
    {
        if (shared > _validPrefix)
        {
            // An earlier ablation overwrote part of the prefix this one needs: restore it from the full prompt.
            _sequence!.Rewind(_validPrefix);
            Run(_input.PromptIds.Take(shared).ToArray(), _validPrefix, logitsFrom: null);
        }
        _sequence!.Rewind(shared);
        _validPrefix = shared;
        return Continue(ids, shared);
    }

    // Runs prompt[start..] + answer after the sequence's first `start` tokens; the answer tokens' log-probabilities.
    private double[] Continue(int[] prompt, int start) =>
        Run(prompt.Concat(_input.AnswerIds).ToArray(), start, logitsFrom: prompt.Length - 1 - start)!;

    private double[] Whole(int[] prompt)
    {
        ForwardPasses++;
        TokensRun += prompt.Length + _input.AnswerIds.Length;
        return _model.ScoreContinuation(prompt, _input.AnswerIds);
    }

    // Runs sequence[start..] through the cached sequence; with logitsFrom, the answer tokens' log-probabilities
    // predicted from that input position on.
    private double[]? Run(int[] sequence, int start, int? logitsFrom)
    {
        using var scope = NewDisposeScope();
        var tail = sequence[start..];
        ForwardPasses++;
        TokensRun += tail.Length;
        var output = _sequence!.Append(tail, logitsFrom);                                       // [T - from, V]
        if (output is null)
            return null;
        var logits = output.narrow(0, 0, _input.AnswerIds.Length);                               // [A, V]
        if (_keepLogits && FullLogits is null)
            FullLogits = logits.DetachFromDisposeScope();
        return LogProbs(logits);
    }

    // The answer tokens' log-probabilities under logits [A, V] predicting them.
    private double[] LogProbs(Tensor logits)
    {
        using var scope = NewDisposeScope();
        var targets = tensor(_input.AnswerIds.Select(i => (long)i).ToArray(), device: _model.Device);
        return TokenLogProbs.Of(logits, targets).to(ScalarType.Float64).cpu().data<double>().ToArray();
    }

    private static string Key(bool[] mask) => string.Concat(mask.Select(k => k ? '1' : '0'));

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsSequence)
            _sequence?.Dispose();
        FullLogits?.Dispose();
    }
}
