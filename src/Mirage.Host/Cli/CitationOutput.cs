using System.CommandLine;
using Mirage.Core.Citations;

namespace Mirage.Host.Cli;

/// <summary>The output formats of the verbs that print a citation result (<c>cite</c>, <c>ask</c>).</summary>
internal static class CitationOutput
{
    public static Option<string> CreateFormatOption()
    {
        var format = new Option<string>("--format") { Description = "text, json or html.", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json", "html");
        return format;
    }

    public static string Render(CitationResult result, string format) => format switch
    {
        "json" => MirageJson.Serialize(result) + "\n",
        "html" => CitationHtml.Render(result),
        _ => CitationText.Render(result),
    };
}
