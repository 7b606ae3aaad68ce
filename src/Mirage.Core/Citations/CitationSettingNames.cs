namespace Mirage.Core.Citations;

/// <summary>
/// The one spelling table of the citation settings a caller may choose, and the one place they
/// become <see cref="CitationOptions"/>: the CLI, the HTTP service and the integrations all go
/// through <see cref="Apply"/>, so a value is spelled, checked and explained the same everywhere.
/// Values are snake_case; the CLI's kebab-case (<c>top-percent</c>) is the same name.
/// </summary>
public static class CitationSettingNames
{
    /// <summary>MIRAGE's CCI filters.</summary>
    public static IReadOnlyDictionary<string, CciFilter> Filters { get; } = new Dictionary<string, CciFilter>
    {
        ["top_percent"] = CciFilter.TopPercent, ["top_k"] = CciFilter.TopK, ["mean"] = CciFilter.Mean,
    };

    /// <summary>How the no-context input is made.</summary>
    public static IReadOnlyDictionary<string, NoContextRule> NoContextRules { get; } = new Dictionary<string, NoContextRule>
    {
        ["literal"] = NoContextRule.Literal, ["trim"] = NoContextRule.Trim,
    };

    /// <summary>Which answer tokens ablation and verification score.</summary>
    public static IReadOnlyDictionary<string, ScoredTokens> ScoredTokenChoices { get; } = new Dictionary<string, ScoredTokens>
    {
        ["all"] = ScoredTokens.All, ["selected"] = ScoredTokens.Selected,
    };

    /// <summary>Whether the prompt goes through the model's chat template.</summary>
    public static IReadOnlyDictionary<string, PromptFormat> PromptFormats { get; } = new Dictionary<string, PromptFormat>
    {
        ["auto"] = PromptFormat.Auto, ["plain"] = PromptFormat.Plain, ["chat"] = PromptFormat.Chat,
    };

    /// <summary>The names a table accepts, in both spellings (for a command line's completion and checks).</summary>
    public static string[] Spellings<T>(IReadOnlyDictionary<string, T> table) => [.. table.Keys, .. table.Keys.Where(k => k.Contains('_')).Select(k => k.Replace('_', '-'))];

    /// <summary>The value <paramref name="name"/> stands for in <paramref name="table"/>; an error naming <paramref name="setting"/> and the choices otherwise.</summary>
    /// <exception cref="MirageException">Not a name in the table.</exception>
    public static T Parse<T>(IReadOnlyDictionary<string, T> table, string name, string setting) =>
        table.TryGetValue(name.Trim().Replace('-', '_').ToLowerInvariant(), out var value) ? value
        : throw new MirageException($"Unknown {setting} '{name}'; use {Choices(table)}.");

    /// <summary>The choices of a table, for help texts and errors ("top_percent, top_k or mean").</summary>
    public static string Choices<T>(IReadOnlyDictionary<string, T> table) =>
        table.Count == 1 ? table.Keys.Single() : string.Join(", ", table.Keys.SkipLast(1)) + " or " + table.Keys.Last();

    /// <summary>
    /// <paramref name="defaults"/> with every setting given replaced (null keeps the default), checked
    /// as a whole. Names go through the tables above; the method through <see cref="CitationOptions.WithMethod"/>.
    /// </summary>
    /// <exception cref="MirageException">An unknown name or a value out of range, naming the setting.</exception>
    public static CitationOptions Apply(CitationOptions defaults, string? method = null, string? filter = null, double? topPercent = null, int? topK = null,
        int? atMostCitations = null, double? ctiStd = null, string? noContext = null, string? scoredTokens = null, bool? verify = null, bool? evidence = null,
        string? promptFormat = null)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        var options = defaults with
        {
            Ablation = defaults.Ablation with
            {
                Tokens = scoredTokens is null ? defaults.Ablation.Tokens : Parse(ScoredTokenChoices, scoredTokens, "scored_tokens"),
                Evidence = evidence ?? defaults.Ablation.Evidence,
            },
            Verify = verify is null ? defaults.Verify : verify.Value ? defaults.Verify ?? new VerificationOptions() : null,
            Prompt = defaults.Prompt with
            {
                NoContext = noContext is null ? defaults.Prompt.NoContext : Parse(NoContextRules, noContext, "no_context"),
                Format = promptFormat is null ? defaults.Prompt.Format : Parse(PromptFormats, promptFormat, "prompt_format"),
            },
            Filter = filter is null ? defaults.Filter : Parse(Filters, filter, "filter"),
            TopPercent = topPercent ?? defaults.TopPercent,
            TopK = topK ?? defaults.TopK,
            AtMostCitations = atMostCitations ?? defaults.AtMostCitations,
            Pecore = defaults.Pecore with { CtiStdThreshold = ctiStd ?? defaults.Pecore.CtiStdThreshold },
        };
        options = method is null ? options : options.WithMethod(method.Trim().ToLowerInvariant());
        options.Validate();
        return options;
    }
}
