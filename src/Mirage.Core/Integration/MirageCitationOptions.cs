using System.ComponentModel.DataAnnotations;

namespace Mirage.Core.Integration;

/// <summary>
/// Settings of Mirage's Semantic Kernel filter and chat-client middleware. Bindable from
/// configuration (section <see cref="SectionName"/>) and validated on start.
/// </summary>
public sealed class MirageCitationOptions
{
    /// <summary>The configuration section <c>AddMirageCitations</c> binds.</summary>
    public const string SectionName = "Mirage";

    /// <summary>
    /// The local attribution model: a Hugging Face folder, a GGUF file, <c>hf:ORG/NAME</c> or
    /// <c>ollama:NAME[:TAG]</c>. Null: the embedded reader in <c>models/reader</c> next to the application.
    /// </summary>
    public string? ModelPath { get; set; }

    /// <summary>
    /// What runs the attribution model: <see cref="Models.ModelEngine.Auto"/> (llama.cpp for a GGUF
    /// file when <see cref="Method"/> needs forward passes only, TorchSharp otherwise), TorchSharp or llama.cpp.
    /// </summary>
    public Models.ModelEngine Engine { get; set; } = Models.ModelEngine.Auto;

    /// <summary>The TorchSharp engine's compute dtype (<c>auto</c>, <c>float32</c>, <c>bfloat16</c>, <c>float16</c> or <c>float64</c>).</summary>
    public string DType { get; set; } = "auto";

    /// <summary>Longest the app's answer may wait for its citations; after that it goes out without them (status <c>timed_out</c>).</summary>
    [Range(0.01, 3600)]
    public double TimeoutSeconds { get; set; } = 30;

    /// <summary>Throw <see cref="MirageCitationException"/> instead of returning an answer whose citations failed.</summary>
    public bool Strict { get; set; }

    /// <summary>Plugins whose functions are retrieval (case-insensitive). Empty, with <see cref="RetrievalFunctions"/> empty: the defaults described on <see cref="IsRetrievalFunction"/>.</summary>
    public List<string> RetrievalPlugins { get; set; } = [];

    /// <summary>Functions (by name, or <c>plugin.name</c>) that are retrieval (case-insensitive).</summary>
    public List<string> RetrievalFunctions { get; set; } = [];

    /// <summary>
    /// Decides which functions are retrieval; overrides the lists. Default: functions that return
    /// <c>TextSearchResult</c>s or <c>KernelSearchResults</c> always count; otherwise those named in the
    /// lists, or, when both lists are empty, those whose plugin or function name mentions search,
    /// retrieve, lookup or documents.
    /// </summary>
    public Func<string?, string, bool>? IsRetrievalFunction { get; set; }

    /// <summary>Property names read from records returned by retrieval functions (first match wins, case-insensitive).</summary>
    public PassageMapping Mapping { get; set; } = new();

    /// <summary>Kernel arguments that hold the user's question in a prompt function (first present wins); else the rendered prompt is the question.</summary>
    public List<string> QuestionArguments { get; set; } = ["question", "query", "input"];

    /// <summary>The most passages one answer is cited against; with more, the answer goes out uncited (<see cref="CitationStatus.TooManyPassages"/>).</summary>
    [Range(1, 1000)]
    public int MaxPassages { get; set; } = 20;

    /// <summary>How sentences are cited: passage ablation (the default, chosen on Mirage's development split) or MIRAGE's context cues.</summary>
    public Citations.CitationMethod Method { get; set; } = new Citations.CitationOptions().Method;

    /// <summary>Measure each cited sentence's necessity and sufficiency and flag citations that fail (<c>CitedSentence.Support</c>); costs two forward passes per cited sentence.</summary>
    public bool Verify { get; set; }

    /// <summary>MIRAGE's Top-% filter on context cues (the CCI method).</summary>
    [Range(0.0, 1.0)]
    public double TopPercent { get; set; } = 0.05;

    /// <summary>Citations per sentence at most.</summary>
    [Range(1, 100)]
    public int AtMostCitations { get; set; } = 3;

    private static readonly string[] RetrievalHints = ["search", "retriev", "lookup", "document"];

    /// <summary>
    /// Whether a function (or tool) is retrieval: the predicate when set; else, with names configured,
    /// one of them (plugin, function, or plugin.function); else a name that mentions search,
    /// retrieval, lookup or documents.
    /// </summary>
    public bool CountsAsRetrieval(string? plugin, string function)
    {
        if (IsRetrievalFunction is { } predicate)
            return predicate(plugin, function);
        if (RetrievalPlugins.Count > 0 || RetrievalFunctions.Count > 0)
        {
            return (plugin is not null && RetrievalPlugins.Contains(plugin, StringComparer.OrdinalIgnoreCase))
                || RetrievalFunctions.Contains(function, StringComparer.OrdinalIgnoreCase)
                || (plugin is not null && RetrievalFunctions.Contains($"{plugin}.{function}", StringComparer.OrdinalIgnoreCase));
        }
        return RetrievalHints.Any(h => function.Contains(h, StringComparison.OrdinalIgnoreCase) || (plugin?.Contains(h, StringComparison.OrdinalIgnoreCase) ?? false));
    }
}

/// <summary>Which properties of a retrieved record hold a passage's parts (candidates in order, case-insensitive).</summary>
public sealed class PassageMapping
{
    /// <summary>The passage text.</summary>
    public List<string> Text { get; set; } = ["Text", "Value", "Content", "Chunk", "Snippet", "Body"];

    /// <summary>The title.</summary>
    public List<string> Title { get; set; } = ["Title", "Name"];

    /// <summary>The link, also the preferred id.</summary>
    public List<string> Link { get; set; } = ["Link", "Url", "Uri", "Source"];

    /// <summary>An explicit id.</summary>
    public List<string> Id { get; set; } = ["Id", "Key", "DocumentId"];
}
