namespace Mirage.Core.Citations;

/// <summary>
/// Upper bounds, in token-passes, of the model work a citation request can cause, known before the
/// passes run (<see cref="CitationOptions.MaxTokenPasses"/>). Every pass of a request is at most its
/// full input long (prompt and answer), so each bound counts passes and multiplies by that length.
/// </summary>
public static class CitationBudget
{
    /// <summary>CTI's two teacher-forced passes: with the passages and without them.</summary>
    public static long Cti(PreparedCitation input) => (long)input.PromptIds.Length + input.NoContextIds.Length + 2L * input.AnswerTokens.Count;

    /// <summary>
    /// Passage ablation (<see cref="AblationCitations"/>) and verification: leave-one-out, the
    /// greedy rounds (round one's sets are leave-one-out's, scored once; a later round adds at most one
    /// set per sentence and remaining passage, and no more than there are distinct sets), pruning,
    /// each cited set's drop, evidence sentences, and two passes per verified sentence.
    /// </summary>
    public static long Ablation(PreparedCitation input, IReadOnlyList<string> passageTexts, CitationOptions options)
    {
        long length = input.PromptIds.Length + input.AnswerTokens.Count;
        int passages = input.Passages.Count, sentences = input.Sentences.Count;
        long variants = 0;
        if (options.Method == CitationMethod.Ablation)
        {
            int cap = Math.Min(passages, options.AtMostCitations ?? passages);
            variants = passages;
            for (int round = 2; round <= cap; round++)
                variants += Math.Min((long)sentences * (passages - round + 1), Choose(passages, round));
            variants += sentences * ((long)cap * (cap + 1) + 1);
            if (options.Ablation.Evidence)
                variants += passageTexts.Sum(text => (long)SentenceSplitter.Split(text).Count);
        }
        if (options.Verify is not null)
            variants += 2L * sentences + 1;
        return variants * length;
    }

    /// <summary>Information-flow routes: per sentence a decomposed pass and the attention split for the routes' targets, counted as two passes.</summary>
    public static long Routes(PreparedCitation input, CitationOptions options) =>
        options.Method == CitationMethod.Routes ? 2L * input.Sentences.Count * (input.PromptIds.Length + input.AnswerTokens.Count) : 0;

    /// <summary>Throws when <paramref name="cost"/> passes <paramref name="options"/>' budget.</summary>
    /// <exception cref="CitationBudgetExceededException">Over the budget.</exception>
    public static void Check(long cost, CitationOptions options, string work)
    {
        if (cost > options.MaxTokenPasses)
            throw new CitationBudgetExceededException(
                $"{work} would take up to {cost:N0} token-passes, over the budget of {options.MaxTokenPasses:N0}: send fewer passages or a shorter answer, or lower at_most_citations.");
    }

    private static long Choose(int n, int k)
    {
        double result = 1;
        for (int i = 1; i <= k; i++)
            result = result * (n - k + i) / i;
        return (long)Math.Min(result, long.MaxValue / 4);
    }
}
