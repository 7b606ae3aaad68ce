using Mirage.Eval.Data;

namespace Mirage.Eval.Harness;

/// <summary>
/// Decides whether a set of an item's passages, read together, entails one of its answer
/// sentences: the judge behind ALCE's citation recall and precision (docs/algorithms.md, section 4).
/// </summary>
public interface IEntailmentJudge
{
    /// <summary>The name shown in reports.</summary>
    string Name { get; }

    /// <summary>True when the judge needs <c>gold_citations</c> in the data.</summary>
    bool RequiresGold { get; }

    /// <summary>Whether passages <paramref name="passages"/> (0-based) of <paramref name="item"/> together entail answer sentence <paramref name="sentence"/>.</summary>
    Task<bool> EntailsAsync(AlceItem item, int sentence, IReadOnlyList<int> passages, CancellationToken cancellationToken = default);
}

/// <summary>
/// The exact judge for generated data: passages entail a sentence when they include one of the
/// passages it came from (every gold passage holds the whole sentence, by construction). A
/// sentence that needs no context has no gold passage, so nothing entails it, as an NLI judge
/// would also say.
/// </summary>
public sealed class GoldProvenanceJudge : IEntailmentJudge
{
    /// <inheritdoc />
    public string Name => "gold provenance";

    /// <inheritdoc />
    public bool RequiresGold => true;

    /// <inheritdoc />
    public Task<bool> EntailsAsync(AlceItem item, int sentence, IReadOnlyList<int> passages, CancellationToken cancellationToken = default)
    {
        var gold = item.GoldCitations ?? throw new InvalidOperationException($"Item {item.Id} has no gold_citations.");
        return Task.FromResult(passages.Any(gold[sentence].Contains));
    }
}
