using System.Text.Json.Serialization;
using Mirage.Core.Context;

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

/// <summary>Everything that shapes a citation result; recorded in the result.</summary>
public sealed record CitationOptions
{
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

    /// <summary>How passages and the question are rendered.</summary>
    public PromptTemplate Prompt { get; init; } = new();

    /// <summary>Throws naming the first invalid value.</summary>
    public void Validate()
    {
        if (TopPercent is <= 0 or > 1 || double.IsNaN(TopPercent))
            throw new MirageException($"TopPercent must be in (0, 1], got {TopPercent}.");
        if (TopK < 1)
            throw new MirageException($"TopK must be at least 1, got {TopK}.");
        if (AtMostCitations is < 1)
            throw new MirageException($"AtMostCitations must be at least 1 when set, got {AtMostCitations}.");
        if (!Enum.IsDefined(Filter))
            throw new MirageException($"Unknown CCI filter {Filter}; choose TopPercent, TopK or Mean.");
        Pecore.ValidateValues();
        Prompt.Validate();
    }
}
