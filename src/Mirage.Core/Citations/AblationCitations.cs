namespace Mirage.Core.Citations;

/// <summary>
/// What passage ablation measured for one sentence: the tokens it scored, how much the passages
/// together raised them, each passage's leave-one-out drop, and the drop when the cited passages
/// are removed together (nats, summed over the scored tokens).
/// </summary>
/// <param name="Sentence">The sentence's index.</param>
/// <param name="Tokens">The answer tokens scored.</param>
/// <param name="ContextEffect">g(all passages) - g(no-context prompt).</param>
/// <param name="PassageDrops">Per passage, g(all passages) - g(without that passage).</param>
/// <param name="CitedDrop">g(all passages) - g(without the cited passages); 0 when nothing is cited.</param>
public sealed record SentenceAblation(int Sentence, IReadOnlyList<int> Tokens, double ContextEffect, IReadOnlyList<double> PassageDrops, double CitedDrop);

/// <summary>
/// <see cref="CitationMethod.Ablation"/>: per sentence, the smallest set of passages (found
/// greedily) whose removal takes away most of what the context gave the sentence. Round one is
/// leave-one-out, shared by every sentence; a sentence that no single passage explains (its fact
/// stands in two passages, or it joins facts from two) goes on to remove pairs, then triples.
/// </summary>
public static class AblationCitations
{
    /// <summary>The tokens of sentence <paramref name="sentence"/> that ablation scores under <paramref name="rule"/>.</summary>
    public static IReadOnlyList<int> ScoredTokens(IReadOnlyList<AnswerToken> tokens, int sentence, ScoredTokens rule) =>
        tokens.Where(t => t.Sentence == sentence && !t.Special && (rule == Citations.ScoredTokens.All || t.Selected)).Select(t => t.Index).ToList();

    /// <summary>The sentences' citations and what was measured for each.</summary>
    /// <param name="ablation">The ablation runner over the request's input.</param>
    /// <param name="sentences">The answer's sentences.</param>
    /// <param name="tokens">The answer tokens (CTI selection included).</param>
    /// <param name="noContextLogProbs">Per answer token, its log-probability after the no-context prompt.</param>
    /// <param name="passages">The passages as rendered.</param>
    /// <param name="passageTexts">Each passage's own text (what <see cref="AblationOptions.Evidence"/> splits into sentences).</param>
    /// <param name="options">The settings (<see cref="CitationOptions.Ablation"/>, <see cref="CitationOptions.AtMostCitations"/>).</param>
    /// <param name="cancellationToken">Checked before each forward pass.</param>
    public static (IReadOnlyList<CitedSentence> Sentences, IReadOnlyList<SentenceAblation> Measured) Build(
        ContextAblation ablation, IReadOnlyList<SentenceSpan> sentences, IReadOnlyList<AnswerToken> tokens, IReadOnlyList<double> noContextLogProbs,
        IReadOnlyList<PassageSpan> passages, IReadOnlyList<string> passageTexts, CitationOptions options, CancellationToken cancellationToken = default)
    {
        int count = passages.Count, cap = Math.Min(count, options.AtMostCitations ?? count);
        var settings = options.Ablation;
        var full = ablation.Full;
        var leaveOneOut = ablation.Score(Enumerable.Range(0, count).Select(p => ContextAblation.Without(count, [p])).ToList(), cancellationToken);
        var states = sentences.Select((_, s) =>
        {
            var scored = ScoredTokens(tokens, s, settings.Tokens);
            double effect = ContextAblation.Sum(full, scored) - scored.Sum(t => (double)noContextLogProbs[t]);
            // Nothing to explain: no scored token, or the passages did not raise them.
            bool done = scored.Count == 0 || effect < settings.MinDrop;
            return new SentenceState(scored, effect, done);
        }).ToList();

        for (int round = 0; round < cap; round++)
        {
            var active = states.Where(s => !s.Done).ToList();
            if (active.Count == 0)
                break;
            // Every sentence's candidates in one call, so shared masks run once and in cache order.
            var candidates = active.SelectMany(s => Enumerable.Range(0, count).Except(s.Removed).Select(p => s.Removed.Append(p).ToArray())).ToList();
            var scores = ablation.Score(candidates.Select(set => ContextAblation.Without(count, set)).ToList(), cancellationToken);
            var byKey = candidates.Select((set, i) => (Key: string.Join(',', set), Scores: scores[i])).DistinctBy(c => c.Key).ToDictionary(c => c.Key, c => c.Scores);
            foreach (var state in active)
            {
                var before = state.Last ?? full;
                var (passage, after) = Enumerable.Range(0, count).Except(state.Removed)
                    .Select(p => (Passage: p, Scores: byKey[string.Join(',', state.Removed.Append(p))]))
                    .MaxBy(c => -ContextAblation.Sum(c.Scores, state.Scored));
                state.Add(passage, after, before, full);
                state.Done = state.Drop >= settings.Coverage * state.Effect || state.Removed.Count == cap;
            }
        }

        var cited = new List<CitedSentence>();
        var measured = new List<SentenceAblation>();
        var evidence = settings.Evidence ? new Evidence(ablation, passageTexts, full, cancellationToken) : null;
        for (int s = 0; s < sentences.Count; s++)
        {
            var state = states[s];
            // When even the removed passages together take away too little, the sentence's support lies
            // in no passages Mirage can name (the prompt's layout, say): it cites none. Otherwise a
            // passage whose removal added too little is no citation, unless a later one built on it.
            int keep = state.Drop >= settings.Coverage * state.Effect ? state.Removed.Count : 0;
            while (keep > 0 && state.Gains[keep - 1] < settings.MinDrop)
                keep--;
            var members = Enumerable.Range(0, keep).ToList();
            if (settings.PruneWithin is { } tolerance)
                Prune(ablation, state, members, tolerance, cancellationToken);
            var citations = members
                .Select(k => new Citation(passages[state.Removed[k]].Id, state.Removed[k], state.Gains[k], state.Triggers[k].Select(t => new CitationTrigger(t.Token, tokens[t.Token].Text, t.Drop)).ToList())
                {
                    Evidence = evidence?.Of(state.Removed[k], state.Scored, settings.MinDrop),
                })
                .ToList();
            var drops = leaveOneOut.Select(without => ContextAblation.Sum(full, state.Scored) - ContextAblation.Sum(without, state.Scored)).ToList();
            cited.Add(new CitedSentence(s, sentences[s].Start, sentences[s].End, sentences[s].Text, citations));
            double citedDrop = members.Count == 0 ? 0 : ContextAblation.Sum(full, state.Scored)
                - ContextAblation.Sum(ablation.Score([ContextAblation.Without(count, members.Select(k => state.Removed[k]))], cancellationToken)[0], state.Scored);
            measured.Add(new SentenceAblation(s, state.Scored, state.Effect, drops, citedDrop));
        }
        return (cited, measured);
    }

    // ALCE's precision rule with the model as judge: a cited passage goes when it does not suffice
    // alone while the others do (g within `tolerance` nats of all passages'), weakest alone first.
    // Of a fact's passage and one that repeats its value for another entity, the model falls back on
    // either when the other is removed; when only one carries the sentence alone, only it stays
    // (when both do, as they mostly do for the shipped reader, both stay: the model uses either).
    private static void Prune(ContextAblation ablation, SentenceState state, List<int> members, double tolerance, CancellationToken cancellationToken)
    {
        int count = ablation.PassageCount;
        double full = ContextAblation.Sum(ablation.Full, state.Scored);
        double With(IEnumerable<int> kept) => ContextAblation.Sum(ablation.Score([ContextAblation.Only(count, kept.Select(k => state.Removed[k]))], cancellationToken)[0], state.Scored);
        while (members.Count > 1)
        {
            var alone = members.ToDictionary(k => k, k => With([k]));
            var removable = members.Where(k => alone[k] < full - tolerance && With(members.Where(o => o != k)) >= full - tolerance).OrderBy(k => alone[k]).ToList();
            if (removable.Count == 0)
                break;
            members.Remove(removable[0]);
        }
    }

    // Hierarchical ablation: each sentence of a cited passage removed in turn (every other passage
    // kept), scored once per passage for all answer sentences that cite it.
    private sealed class Evidence(ContextAblation ablation, IReadOnlyList<string> texts, double[] full, CancellationToken cancellationToken)
    {
        private readonly Dictionary<int, (SentenceSpan Sentence, double[] Without)[]> _byPassage = [];

        public IReadOnlyList<PassageEvidence> Of(int passage, IReadOnlyList<int> scored, double minDrop)
        {
            if (!_byPassage.TryGetValue(passage, out var runs))
            {
                // A sentence goes with the whitespace after it, so the passage reads on as written.
                var sentences = SentenceSplitter.Split(texts[passage]);
                var spans = sentences.Select((s, i) => (passage, s.Start, i + 1 < sentences.Count ? sentences[i + 1].Start : texts[passage].Length)).ToList();
                var without = sentences.Count > 1 ? ablation.ScoreWithout(spans, cancellationToken) : [];
                _byPassage[passage] = runs = sentences.Select((s, i) => (s, sentences.Count > 1 ? without[i] : null!)).ToArray();
            }
            double all = ContextAblation.Sum(full, scored);
            // A passage of one sentence: that sentence, with the drop of removing the passage.
            if (runs.Length == 1)
            {
                var without = ablation.Score([ContextAblation.Without(ablation.PassageCount, [passage])], cancellationToken)[0];
                return [new PassageEvidence(runs[0].Sentence.Start, runs[0].Sentence.End, runs[0].Sentence.Text, all - ContextAblation.Sum(without, scored))];
            }
            return runs.Select(r => new PassageEvidence(r.Sentence.Start, r.Sentence.End, r.Sentence.Text, all - ContextAblation.Sum(r.Without, scored)))
                .Where(e => e.Drop >= minDrop).OrderByDescending(e => e.Drop).ToList();
        }
    }

    // A sentence's greedy search: the passages removed so far and what each removal added.
    private sealed class SentenceState(IReadOnlyList<int> scored, double effect, bool done)
    {
        public IReadOnlyList<int> Scored { get; } = scored;
        public double Effect { get; } = effect;
        public bool Done { get; set; } = done;
        public List<int> Removed { get; } = [];
        public List<double> Gains { get; } = [];
        public List<double> Drops { get; } = [];
        public List<List<(int Token, double Drop)>> Triggers { get; } = [];
        public double[]? Last { get; private set; }
        public double Drop => Drops.Count == 0 ? 0 : Drops[^1];

        public void Add(int passage, double[] after, double[] before, double[] full)
        {
            double drop = ContextAblation.Sum(full, Scored) - ContextAblation.Sum(after, Scored);
            Gains.Add(drop - Drop);
            Drops.Add(drop);
            Removed.Add(passage);
            Triggers.Add(Scored.Select(t => (t, (double)before[t] - after[t])).ToList());
            Last = after;
        }
    }
}
