using Mirage.Core.Attribution.Aggregation;

namespace Mirage.Core.Citations;

/// <summary>
/// MIRAGE's last step, from saved scores only (so results can be re-thresholded without the
/// model): for each sentence, filter each selected token's CCI scores over passage tokens, sum the
/// kept scores per passage, and cite passages with a non-zero sum, strongest first, capped.
/// </summary>
public static class CitationBuilder
{
    /// <summary>The answer sentences with their citations, from each selected token's CCI scores.</summary>
    public static IReadOnlyList<CitedSentence> Build(
        IReadOnlyList<SentenceSpan> sentences,
        IReadOnlyList<AnswerToken> tokens,
        IReadOnlyDictionary<int, float[]> cues,
        IReadOnlyList<PassageSpan> passages,
        CitationOptions options)
    {
        var result = new List<CitedSentence>();
        for (int s = 0; s < sentences.Count; s++)
        {
            var perPassage = new double[passages.Count];
            var triggers = passages.Select(_ => new List<CitationTrigger>()).ToArray();
            var selected = tokens.Where(t => t.Sentence == s && t.Selected && cues.ContainsKey(t.Index)).OrderByDescending(t => Math.Abs(t.Cti));
            var spans = passages.Select(p => (p.TokenStart, p.TokenEnd)).ToList();
            foreach (var token in selected)
            {
                var sums = SpanAggregator.Aggregate([Filter(cues[token.Index], passages, options)], spans, "sum")[0];
                for (int p = 0; p < passages.Count; p++)
                {
                    if (sums[p] == 0)
                        continue;
                    perPassage[p] += sums[p];
                    triggers[p].Add(new CitationTrigger(token.Index, token.Text, sums[p]));
                }
            }
            var citations = Enumerable.Range(0, passages.Count)
                .Where(p => perPassage[p] != 0)
                .OrderByDescending(p => perPassage[p])
                .Take(options.AtMostCitations ?? int.MaxValue)
                .Select(p => new Citation(passages[p].Id, p, perPassage[p], triggers[p]))
                .ToList();
            result.Add(new CitedSentence(s, sentences[s].Start, sentences[s].End, sentences[s].Text, citations));
        }
        return result;
    }

    /// <summary>
    /// A result with new selection and filter settings, from its saved scores. Only tokens that
    /// have CCI scores can be cited, so lowering the CTI threshold below the original one selects
    /// no new tokens (their CCI was never computed).
    /// </summary>
    public static CitationResult Rethreshold(CitationResult result, CitationOptions options)
    {
        options.Validate();
        if (result.Options.Method != CitationMethod.Cci || options.Method != CitationMethod.Cci)
            throw new MirageException("Only CCI citations can be re-thresholded from saved scores; ablation citations need the model.");
        var cues = result.Cues.ToDictionary(c => c.TokenIndex, c => c.Scores);
        var scores = result.Tokens.Select(t => t.Cti).ToList();
        var eligible = result.Tokens.Select(t => !t.Special).ToList();
        double threshold = Pecore.TokenSelection.MeanStdThreshold(
            result.Tokens.Where(t => !t.Special).Select(t => t.Cti).ToList(), options.Pecore.CtiStdThreshold, options.Pecore.CtiStdDdof);
        var chosen = Pecore.TokenSelection.Select(scores, eligible, threshold, options.Pecore.CtiTopK);
        var tokens = result.Tokens.Select(t => t with { Selected = chosen[t.Index] && cues.ContainsKey(t.Index) }).ToList();
        var sentences = result.Sentences.Select(s => new SentenceSpan(s.Start, s.End, s.Text)).ToList();
        return result with
        {
            Tokens = tokens,
            Sentences = Build(sentences, tokens, cues, result.Passages, options),
            CtiThreshold = threshold,
            Options = options,
        };
    }

    // The filtered CCI vector: scores outside passages, and those the filter drops, become 0.
    private static float[] Filter(float[] scores, IReadOnlyList<PassageSpan> passages, CitationOptions options)
    {
        var positions = passages.SelectMany(p => Enumerable.Range(p.TokenStart, p.TokenEnd - p.TokenStart)).ToArray();
        var kept = new float[scores.Length];
        if (positions.Length == 0)
            return kept;
        IEnumerable<int> keep;
        switch (options.Filter)
        {
            case CciFilter.TopPercent:
                float max = positions.Max(j => scores[j]), min = positions.Min(j => scores[j]);
                double cut = max - options.TopPercent * (max - min);
                keep = positions.Where(j => scores[j] >= cut);
                break;
            case CciFilter.TopK:
                keep = positions.OrderByDescending(j => scores[j]).Take(options.TopK);
                break;
            default:
                double mean = positions.Average(j => scores[j]);
                keep = positions.Where(j => scores[j] >= mean);
                break;
        }
        foreach (var j in keep)
            kept[j] = scores[j];
        return kept;
    }
}
