using Mirage.Core.Models;
using Mirage.Core.Tokenization;

namespace Mirage.Core.Citations;

/// <summary>
/// A citation request as token ids: the prompt rendered with and without the passages, the answer
/// tokens with their sentences, and where each passage's block lies in the with-context prompt.
/// Every citer that reads the model's internals starts from this, so they all see the same input.
/// </summary>
/// <param name="WithContext">The rendered with-context prompt.</param>
/// <param name="PromptTokens">Its tokens with character offsets.</param>
/// <param name="PromptIds">Its token ids (BOS included when the prompt is not a chat template).</param>
/// <param name="NoContextIds">The no-context prompt's token ids.</param>
/// <param name="AnswerTokens">The answer's tokens as a continuation of the prompt.</param>
/// <param name="Eligible">Per answer token: false for special tokens, which are never selected.</param>
/// <param name="Passages">Each passage's token range in the with-context prompt.</param>
/// <param name="Sentences">The answer's sentences.</param>
/// <param name="SentenceOf">Per answer token, the index of its sentence.</param>
public sealed record PreparedCitation(
    RenderedPrompt WithContext,
    IReadOnlyList<TextToken> PromptTokens,
    int[] PromptIds,
    int[] NoContextIds,
    IReadOnlyList<TextToken> AnswerTokens,
    bool[] Eligible,
    IReadOnlyList<PassageSpan> Passages,
    IReadOnlyList<SentenceSpan> Sentences,
    int[] SentenceOf)
{
    /// <summary>The answer's token ids.</summary>
    public int[] AnswerIds { get; } = AnswerTokens.Select(t => t.Id).ToArray();

    /// <summary>The with-context prompt then the answer: the sequence the model reads when the answer is teacher-forced.</summary>
    public int[] SequenceIds => [.. PromptIds, .. AnswerIds];

    /// <summary>Where in <see cref="SequenceIds"/> the output that predicts answer token <paramref name="answerToken"/> is: the position before it.</summary>
    public int PredictingPosition(int answerToken) => PromptIds.Length + answerToken - 1;

    /// <summary>The answer tokens of sentence <paramref name="sentence"/>, special tokens left out: what a sentence's log-probability sums over.</summary>
    public IReadOnlyList<int> TokensOf(int sentence) =>
        Enumerable.Range(0, AnswerIds.Length).Where(t => SentenceOf[t] == sentence && Eligible[t]).ToList();

    /// <summary>
    /// The with-context prompt as token ids, for generating an answer that citations will later
    /// teacher-force through exactly the same input (a chat template writes its own BOS).
    /// </summary>
    public static int[] AnswerPrompt(LanguageModel model, string question, IReadOnlyList<Passage> passages, PromptTemplate template, CancellationToken cancellationToken = default)
    {
        var prompt = template.Render(question, passages, withContext: true, model.Tokenizer.ChatTemplate, cancellationToken);
        EnsureCanFit(model, prompt.Text.Length, question, passages, "");
        return model.Tokenizer.EncodeIds(prompt.Text, addSpecialTokens: !prompt.IsChat);
    }

    // Refuses an input too long in characters to fit the context whatever its tokens, before the
    // cost of tokenizing it (which grows with its length) is paid.
    private static void EnsureCanFit(LanguageModel model, long characters, string question, IReadOnlyList<Passage> passages, string answer)
    {
        long fewest = model.Tokenizer.MinimumTokens(characters);
        if (fewest > model.ContextLength)
            throw new ContextLengthExceededException(
                $"The input is {characters:N0} characters, at least {fewest:N0} tokens, more than {model.ModelId}'s {model.ContextLength}-token context. "
                + WhatToShorten(question, passages, answer));
    }

    // The advice names the longest of the three parts, so a long question is not blamed on the passages.
    private static string WhatToShorten(string question, IReadOnlyList<Passage> passages, string answer)
    {
        long inPassages = passages.Sum(p => (long)p.Text.Length + (p.Title?.Length ?? 0));
        return question.Length >= inPassages && question.Length >= answer.Length ? $"Shorten the question ({question.Length:N0} characters)."
            : answer.Length >= inPassages ? $"Shorten the answer ({answer.Length:N0} characters)."
            : $"Shorten or drop passages ({passages.Count} given, {inPassages:N0} characters).";
    }

    /// <summary>
    /// Renders and tokenizes a request for <paramref name="model"/>; <paramref name="passages"/> must
    /// carry ids. Throws <see cref="ContextLengthExceededException"/> when the input exceeds the model's context.
    /// </summary>
    public static PreparedCitation Prepare(LanguageModel model, string question, IReadOnlyList<Passage> passages, string answer, PromptTemplate template, IReadOnlyList<int>? generatedIds = null)
    {
        var tokenizer = model.Tokenizer;
        var withContext = template.Render(question, passages, withContext: true, tokenizer.ChatTemplate);
        var withoutContext = template.Render(question, passages, withContext: false, tokenizer.ChatTemplate);
        EnsureCanFit(model, withContext.Text.Length + answer.Length, question, passages, answer);
        // A chat template writes its own BOS; a plain prompt gets the tokenizer's.
        var promptTokens = tokenizer.Encode(withContext.Text, addSpecialTokens: !withContext.IsChat);
        var promptIds = promptTokens.Select(t => t.Id).ToArray();
        var noContextIds = tokenizer.EncodeIds(withoutContext.Text, addSpecialTokens: !withoutContext.IsChat);
        var answerTokens = (generatedIds is null ? null : GeneratedTokens(tokenizer, promptIds, generatedIds, answer))
            ?? SuppliedTokens(tokenizer, answer, afterSpace: !withContext.IsChat);
        int length = promptIds.Length + answerTokens.Count;
        if (length > model.ContextLength)
            throw new ContextLengthExceededException(
                $"The prompt with its {passages.Count} passages ({promptIds.Length} tokens) plus the answer ({answerTokens.Count} tokens) is {length} tokens, "
                + $"{length - model.ContextLength} more than {model.ModelId}'s {model.ContextLength}-token context. " + WhatToShorten(question, passages, answer));
        var special = tokenizer.SpecialTokens.Values.ToHashSet();
        var sentences = SentenceSplitter.Split(answer);
        return new PreparedCitation(withContext, promptTokens, promptIds, noContextIds, answerTokens,
            answerTokens.Select(t => !special.Contains(t.Id)).ToArray(), LocatePassages(passages, withContext, promptTokens),
            sentences, AssignSentences(answer, answerTokens, sentences));
    }

    // A supplied answer: its core (surrounding whitespace removed) is tokenised as the prompt's
    // continuation, so " A." and "A." give the same tokens; spans index the answer as given.
    private static IReadOnlyList<TextToken> SuppliedTokens(TextTokenizer tokenizer, string answer, bool afterSpace)
    {
        int lead = answer.Length - answer.TrimStart().Length;
        return tokenizer.EncodeContinuation(answer.Trim(), afterSpace)
            .Select(t => t with { Start = t.Start + lead, End = t.End + lead })
            .ToList();
    }

    // A generated answer: the model's own ids, with each token's span found by decoding the ids one
    // more at a time; null when no prefix of the ids decodes to the answer.
    private static IReadOnlyList<TextToken>? GeneratedTokens(TextTokenizer tokenizer, int[] promptIds, IReadOnlyList<int> ids, string answer)
    {
        var core = answer.Trim();
        var ends = new List<int>();
        string decoded = "";
        for (int k = 1; k <= ids.Count; k++)
        {
            decoded = tokenizer.DecodeContinuation(promptIds, ids.Take(k).ToList());
            ends.Add(decoded.Length);
            if (decoded.Trim() == core)
                break;
        }
        if (decoded.Trim() != core)
            return null;
        // Map the decoded text onto the answer through their shared core.
        int shift = (answer.Length - answer.TrimStart().Length) - (decoded.Length - decoded.TrimStart().Length);
        var tokens = new List<TextToken>();
        int start = 0;
        for (int i = 0; i < ends.Count; i++)
        {
            // An incomplete UTF-8 sequence decodes longer or shorter than it ends: spans only move forward.
            int end = Math.Clamp(ends[i], start, decoded.Length);
            int from = Math.Clamp(start + shift, 0, answer.Length), to = Math.Clamp(end + shift, from, answer.Length);
            tokens.Add(TextTokenizer.WithoutLeadingSpaces(answer, new TextToken(ids[i], answer[from..to], from, to)));
            start = end;
        }
        return tokens;
    }

    // A prompt token belongs to the passage whose rendered block contains its first character.
    private static IReadOnlyList<PassageSpan> LocatePassages(IReadOnlyList<Passage> passages, RenderedPrompt prompt, IReadOnlyList<TextToken> tokens)
    {
        var spans = new List<PassageSpan>();
        for (int p = 0; p < passages.Count; p++)
        {
            var range = prompt.PassageRanges[p];
            var inside = Enumerable.Range(0, tokens.Count).Where(j => tokens[j].Start >= range.Start && tokens[j].Start < range.End && j > 0).ToList();
            if (inside.Count == 0)
                throw new MirageException($"Passage {p + 1} produced no tokens in the prompt.");
            spans.Add(new PassageSpan(passages[p].Id!, p, passages[p].Title, passages[p].Url, inside[0], inside[^1] + 1, range.TextStart, range.TextEnd));
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
