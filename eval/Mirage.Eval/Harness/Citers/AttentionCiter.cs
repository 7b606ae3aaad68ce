using Mirage.Core.Attribution;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Eval.Data;

namespace Mirage.Eval.Harness.Citers;

/// <summary>
/// Baseline: raw attention, no context-sensitivity step. One forward pass with attention weights
/// (mean over layers and heads); each sentence sums, over all its tokens, the attention paid to each
/// passage's block and cites the passage with the most.
/// </summary>
public sealed class AttentionCiter(LanguageModel model, AttributionEngine engine, PromptTemplate template) : ICiter
{
    /// <inheritdoc />
    public string Name => "attention";

    /// <inheritdoc />
    public Task<IReadOnlyList<int[]>> CiteAsync(AlceItem item, IReadOnlyList<SentenceSpan> sentences, CancellationToken cancellationToken = default)
    {
        var input = PreparedCitation.Prepare(model, item.Question, item.ToPassages(), item.Output, template);
        int offset = input.PromptIds.Length;
        var targets = input.AnswerIds.Select((id, i) => new AttributionTarget(offset + i, id)).ToList();
        var scores = engine.Attribute(model, "attention", new AttributionRequest(input.SequenceIds, targets)).Scores;

        var mass = new double[sentences.Count, input.Passages.Count];
        for (int k = 0; k < targets.Count; k++)
        {
            foreach (var passage in input.Passages)
            {
                for (int j = passage.TokenStart; j < passage.TokenEnd; j++)
                    mass[input.SentenceOf[k], passage.Index] += scores[k][j];
            }
        }
        var cited = Enumerable.Range(0, sentences.Count)
            .Select(s => new[] { Enumerable.Range(0, input.Passages.Count).MaxBy(p => mass[s, p]) })
            .ToList();
        return Task.FromResult<IReadOnlyList<int[]>>(cited);
    }
}
