using System.Text.Json.Serialization;
using Mirage.Core.Pecore;

namespace Mirage.Core.Citations;

/// <summary>How a selected token's CCI scores over passage tokens are filtered before summing.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<CciFilter>))]
public enum CciFilter
{
    /// <summary>Keep scores &gt;= max - p * (max - min): a range threshold, not a percentile (MIRAGE default, p = 5%).</summary>
    TopPercent,
    /// <summary>Keep the k largest scores.</summary>
    TopK,
    /// <summary>Keep scores &gt;= their mean.</summary>
    Mean,
}

/// <summary>How sentences are cited.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<CitationMethod>))]
public enum CitationMethod
{
    /// <summary>MIRAGE: the context cues (CCI) of each sentence's context-sensitive tokens, summed per passage.</summary>
    Cci,
    /// <summary>Passage ablation: the passages whose removal takes away what the context gave the sentence (<see cref="AblationOptions"/>).</summary>
    Ablation,
    /// <summary>Information-flow routes: the passages by their share of the flow from the sentence's predicting outputs back to the prompt (<see cref="CitationOptions.RouteRatio"/>).</summary>
    Routes,
}

/// <summary>Which of a sentence's tokens ablation scores.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ScoredTokens>))]
public enum ScoredTokens
{
    /// <summary>The tokens CTI selected as context-sensitive; a sentence with none cites nothing.</summary>
    Selected,
    /// <summary>Every token of the sentence (special tokens excepted).</summary>
    All,
}

/// <summary>
/// Settings of <see cref="CitationMethod.Ablation"/>. Per sentence, with g the summed
/// log-probability of its scored tokens: the context's effect is g(all passages) - g(no passages);
/// passages are removed greedily (each round the one whose removal, with those already removed,
/// lowers g most) until the removed set's drop reaches <see cref="Coverage"/> of the effect, and the
/// removed set is cited, less trailing passages that added under <see cref="MinDrop"/>; when
/// <see cref="CitationOptions.AtMostCitations"/> passages do not reach it, nothing is. A fact stated
/// in two passages is cited twice: removing either alone changes little, removing both takes it away.
/// </summary>
public sealed record AblationOptions
{
    /// <summary>The tokens g sums over.</summary>
    /// <value>Default <see cref="ScoredTokens.All"/> (on the development split it beat <see cref="ScoredTokens.Selected"/>: CTI passes over some tokens a passage supports).</value>
    public ScoredTokens Tokens { get; init; } = ScoredTokens.All;

    /// <summary>The fraction of the context's effect the removed passages must take away, in (0, 1].</summary>
    /// <value>Default 0.5.</value>
    public double Coverage { get; init; } = 0.5;

    /// <summary>Nats: a sentence whose context effect is below this cites nothing, and a passage must add at least this much drop.</summary>
    /// <value>Default 0.1.</value>
    public double MinDrop { get; init; } = 0.1;

    /// <summary>
    /// Nats: a cited passage is dropped when the sentence, with it alone, falls more than this below
    /// its log-probability with all passages while the other cited passages stay within it (ALCE's
    /// precision rule, judged by the model); null keeps every passage the search removed.
    /// </summary>
    /// <value>Default 1.</value>
    public double? PruneWithin { get; init; } = 1;

    /// <summary>
    /// Hierarchical ablation: also remove each sentence of every cited passage, one at a time, and
    /// report the sentences whose removal lowers the cited sentence (<see cref="Citation.Evidence"/>);
    /// one more forward pass per sentence of a cited passage.
    /// </summary>
    /// <value>Default false.</value>
    public bool Evidence { get; init; }

    /// <summary>Throws naming the first invalid value.</summary>
    public void Validate()
    {
        if (PruneWithin is { } prune && !(prune is >= 0 and <= 1000))
            throw new MirageException($"Ablation PruneWithin must be between 0 and 1000 nats when set, got {prune}.");
        if (!Enum.IsDefined(Tokens))
            throw new MirageException($"Unknown scored tokens {Tokens}; choose Selected or All.");
        if (!(Coverage is > 0 and <= 1))
            throw new MirageException($"Ablation coverage must be in (0, 1], got {Coverage}.");
        if (!(MinDrop is >= 0 and <= 1000))
            throw new MirageException($"Ablation MinDrop must be between 0 and 1000 nats, got {MinDrop}.");
    }
}

/// <summary>
/// Settings of verified citations: per cited sentence, necessity = g(all passages) - g(without the
/// cited ones) and sufficiency = g(only the cited ones) - g(all passages), in nats over the
/// sentence's scored tokens; a sentence whose citations miss either bound is flagged.
/// </summary>
public sealed record VerificationOptions
{
    /// <summary>Nats: removing the cited passages must lower the sentence at least this much.</summary>
    /// <value>Default 0.1.</value>
    public double MinNecessity { get; init; } = 0.1;

    /// <summary>Nats (at most 0): with only the cited passages the sentence may lose at most this much.</summary>
    /// <value>Default -1.</value>
    public double MinSufficiency { get; init; } = -1;

    /// <summary>Throws naming the first invalid value.</summary>
    public void Validate()
    {
        if (!(Math.Abs(MinNecessity) <= 1000))
            throw new MirageException($"MinNecessity must be a number between -1000 and 1000 nats, got {MinNecessity}.");
        if (!(MinSufficiency is <= 0 and >= -1000))
            throw new MirageException($"MinSufficiency must be between -1000 and 0 nats, got {MinSufficiency}.");
    }
}

/// <summary>Everything that shapes a citation result; recorded in the result.</summary>
public sealed record CitationOptions
{
    /// <summary>How sentences are cited.</summary>
    /// <value>
    /// Default <see cref="CitationMethod.Ablation"/>, chosen on the development split (README); MIRAGE's
    /// reference method is <see cref="CitationMethod.Cci"/> with saliency.
    /// </value>
    public CitationMethod Method { get; init; } = CitationMethod.Ablation;

    /// <summary>Settings of <see cref="CitationMethod.Ablation"/> (also which tokens verification scores).</summary>
    public AblationOptions Ablation { get; init; } = new();

    /// <summary>Measure each cited sentence's necessity and sufficiency and flag failures; null to skip (the default).</summary>
    public VerificationOptions? Verify { get; init; }

    /// <summary>CTI and CCI settings.</summary>
    public PecoreOptions Pecore { get; init; } = new();

    /// <summary>The CCI filter.</summary>
    /// <value>Default <see cref="CciFilter.TopPercent"/>.</value>
    public CciFilter Filter { get; init; } = CciFilter.TopPercent;

    /// <summary>p for <see cref="CciFilter.TopPercent"/>, in (0, 1].</summary>
    /// <value>Default 0.05.</value>
    public double TopPercent { get; init; } = 0.05;

    /// <summary>k for <see cref="CciFilter.TopK"/>.</summary>
    /// <value>Default 3.</value>
    public int TopK { get; init; } = 3;

    /// <summary>Most citations per sentence (strongest first); null for no cap.</summary>
    /// <value>Default 3.</value>
    public int? AtMostCitations { get; init; } = 3;

    /// <summary>
    /// With <see cref="CitationMethod.Routes"/>: the share of the flow, relative to the top passage's,
    /// another passage needs to be cited too, in (0, 1].
    /// </summary>
    /// <value>Default 0.5, chosen on the development split (55.5 exact F1 against 55.4 for the top passage alone).</value>
    public double RouteRatio { get; init; } = 0.5;

    /// <summary>How passages and the question are rendered.</summary>
    public PromptTemplate Prompt { get; init; } = new();

    /// <summary>
    /// A bound on one request's model work in token-passes (a token through one forward pass; a
    /// backward pass counts twice), checked before the work that would pass it starts: ablation's
    /// bound before any pass, CCI's once CTI has selected its tokens. Null (the default): no bound.
    /// A service sets it so that one client cannot hold the model with a costly method.
    /// </summary>
    public long? MaxTokenPasses { get; init; }

    /// <summary>The method as people name it: <c>ablation</c>, or the CCI attribution method (<c>saliency</c>, ...).</summary>
    [JsonIgnore]
    public string MethodName => Method switch { CitationMethod.Ablation => "ablation", CitationMethod.Routes => "routes", _ => Pecore.CciMethod };

    /// <summary>Whether the method reads the model's internals (gradients, attention, decomposed passes), which only the torch engine gives.</summary>
    [JsonIgnore]
    public bool NeedsInternals => Method != CitationMethod.Ablation;

    /// <summary>Every name <see cref="WithMethod"/> takes: the built-in CCI attribution methods, then <c>ablation</c> and <c>routes</c>.</summary>
    public static IReadOnlyList<string> MethodNames { get; } = [.. Attribution.AttributionMethodRegistry.BuiltInNames, "ablation", "routes"];

    /// <summary>These options citing by the method <paramref name="name"/> names (as <see cref="MethodName"/> does), the one mapping of CLI, HTTP and harness names.</summary>
    /// <exception cref="MirageException">The name is none of <see cref="MethodNames"/>.</exception>
    public CitationOptions WithMethod(string name) =>
        name == "ablation" ? this with { Method = CitationMethod.Ablation }
        : name == "routes" ? this with { Method = CitationMethod.Routes }
        : MethodNames.Contains(name) ? this with { Method = CitationMethod.Cci, Pecore = Pecore with { CciMethod = name } }
        : throw new MirageException($"Unknown method '{name}'; use {string.Join(", ", MethodNames)}.");

    /// <summary>Throws naming the first invalid value.</summary>
    public void Validate()
    {
        if (TopPercent is <= 0 or > 1 || double.IsNaN(TopPercent))
            throw new MirageException($"TopPercent must be in (0, 1], got {TopPercent}.");
        if (TopK < 1)
            throw new MirageException($"TopK must be at least 1, got {TopK}.");
        if (MaxTokenPasses is < 1)
            throw new MirageException($"MaxTokenPasses must be at least 1 when set, got {MaxTokenPasses}.");
        if (AtMostCitations is < 1)
            throw new MirageException($"AtMostCitations must be at least 1 when set, got {AtMostCitations}.");
        if (!Enum.IsDefined(Filter))
            throw new MirageException($"Unknown CCI filter {Filter}; choose TopPercent, TopK or Mean.");
        if (!Enum.IsDefined(Method))
            throw new MirageException($"Unknown citation method {Method}; choose Cci, Ablation or Routes.");
        if (RouteRatio is <= 0 or > 1 || double.IsNaN(RouteRatio))
            throw new MirageException($"RouteRatio must be in (0, 1], got {RouteRatio}.");
        Pecore.ValidateValues();
        Ablation.Validate();
        Verify?.Validate();
        Prompt.Validate();
    }
}
