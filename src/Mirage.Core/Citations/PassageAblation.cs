using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Citations;

/// <summary>
/// Leave-one-out over passages (ContextCite's question): for each answer sentence and passage, how
/// much the log-probability of the sentence's tokens drops when that passage is removed from the
/// prompt, the answer teacher-forced. Forward passes only, with AttriBoT's trick: the prompt before
/// a removed passage is the same as the full prompt's, so its KV cache is computed once and each
/// ablated input runs only from where it differs (passages are taken last to first, so the shared
/// prefix a later one needs is never overwritten).
/// </summary>
/// <param name="Sentences">The answer's sentences.</param>
/// <param name="Drops">Per sentence, per passage: the summed log-probability drop (nats) of the sentence's tokens.</param>
/// <param name="LogProbs">Per answer token, its log-probability with every passage.</param>
/// <param name="AblatedLogProbs">Per passage, per answer token, its log-probability without that passage.</param>
/// <param name="TokensRun">Tokens the forward passes processed (the full input once, then each ablated input from where it differs).</param>
public sealed record PassageAblation(
    IReadOnlyList<SentenceSpan> Sentences,
    IReadOnlyList<IReadOnlyList<double>> Drops,
    IReadOnlyList<float> LogProbs,
    IReadOnlyList<IReadOnlyList<float>> AblatedLogProbs,
    int TokensRun)
{
    /// <summary>Measures every passage's removal for <paramref name="answer"/>; <paramref name="reuseCache"/> false runs each input whole (the reference the cached path must equal).</summary>
    public static PassageAblation Compute(LanguageModel model, string question, IReadOnlyList<Passage> passages, string answer, PromptTemplate template, bool reuseCache = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        var named = passages.Select((p, i) => p with { Id = string.IsNullOrWhiteSpace(p.Id) ? (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) : p.Id }).ToList();
        var input = CitationInput.Prepare(model, question, named, answer, template);
        var chat = model.Tokenizer.ChatTemplate;
        var ablated = named.Select((_, removed) =>
        {
            var prompt = template.Render(question, named.Where((_, i) => i != removed).ToList(), withContext: true, chat);
            return model.Tokenizer.EncodeIds(prompt.Text, addSpecialTokens: !prompt.IsChat);
        }).ToList();

        float[] full;
        var without = new float[named.Count][];
        int tokensRun = 0;
        if (!reuseCache)
        {
            full = model.ScoreContinuation(input.PromptIds, input.AnswerIds);
            for (int p = 0; p < named.Count; p++)
                without[p] = model.ScoreContinuation(ablated[p], input.AnswerIds);
            tokensRun = input.PromptIds.Length + input.AnswerIds.Length + ablated.Sum(a => a.Length + input.AnswerIds.Length);
        }
        else
        {
            using var _ = no_grad();
            int capacity = Math.Max(input.PromptIds.Length, ablated.Max(a => a.Length)) + input.AnswerIds.Length;
            using var cache = new KvCache(model.Config, 1, capacity, model.DType, model.Device);
            full = Continue(model, cache, input.PromptIds, input.AnswerIds, 0, ref tokensRun);
            for (int p = named.Count - 1; p >= 0; p--)
            {
                // Shared with the full input: the longest common prefix, leaving at least the last prompt token to run.
                int shared = 0, limit = Math.Min(input.PromptIds.Length, ablated[p].Length) - 1;
                while (shared < limit && input.PromptIds[shared] == ablated[p][shared])
                    shared++;
                cache.Rewind(shared);
                without[p] = Continue(model, cache, ablated[p], input.AnswerIds, shared, ref tokensRun);
            }
        }

        var drops = input.Sentences.Select((_, s) => (IReadOnlyList<double>)named.Select((_, p) =>
            Enumerable.Range(0, full.Length).Where(t => input.SentenceOf[t] == s).Sum(t => (double)full[t] - without[p][t])).ToList()).ToList();
        return new PassageAblation(input.Sentences, drops, full, without, tokensRun);
    }

    // Runs prompt[start..] + answer after the cache's first `start` slots; the answer tokens' log-probabilities.
    private static float[] Continue(LanguageModel model, KvCache cache, int[] prompt, int[] answer, int start, ref int tokensRun)
    {
        using var scope = NewDisposeScope();
        var sequence = prompt.Concat(answer).Skip(start).Select(i => (long)i).ToArray();
        var ids = tensor(sequence, device: model.Device).unsqueeze(0);                          // [1, T]
        var positions = arange(start, start + sequence.Length, device: model.Device).unsqueeze(0); // [1, T]
        // Logits from the last prompt token on: each predicts the next answer token.
        using var output = model.Forward(new ForwardRequest(model.Embed(ids), positions, Cache: cache, LogitsFrom: prompt.Length - 1 - start));
        var logits = output.Logits[0].narrow(0, 0, answer.Length);                              // [A, V]
        var targets = tensor(answer.Select(i => (long)i).ToArray(), device: model.Device).unsqueeze(1);
        tokensRun += sequence.Length;
        return logits.log_softmax(-1).gather(1, targets).squeeze(1).to(ScalarType.Float32).cpu().data<float>().ToArray();
    }
}
