using System.CommandLine;
using Mirage.Core;
using Mirage.Core.Citations;
using Mirage.Core.Flow;

namespace Mirage.Host.Cli;

/// <summary>The output of the verbs that print a citation result (<c>cite</c>, <c>ask</c>) or its routes (<c>inspect-flow</c>): formats, the routes for a report, and where it goes.</summary>
internal static class CitationOutput
{
    public static Option<string> CreateFormatOption()
    {
        var format = new Option<string>("--format") { Description = "text, json or html.", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json", "html");
        return format;
    }

    public static Option<bool> CreateRoutesOption() => new("--routes")
    {
        Description = "With --format html: put every answer token's information-flow routes in the report, drawn for the token clicked (runs the model on the torch engine).",
    };

    /// <summary>Whether the report gets routes; one line refusing <c>--routes</c> without <c>--format html</c>.</summary>
    public static bool WantsRoutes(ParseResult parse, Option<bool> routes, Option<string> format)
    {
        if (!parse.GetValue(routes))
            return false;
        if (parse.GetRequiredValue(format) != "html")
            throw new MirageException("--routes draws the routes in the HTML report: add --format html (or use mirage inspect-flow for JSON).");
        return true;
    }

    /// <summary>Every answer token's routes for the report, with a progress line on <paramref name="error"/> for long answers and large models.</summary>
    public static async Task<IReadOnlyList<PassageRoutes>> TraceEveryTokenAsync(MirageCitationEngine engine, CitationRequest request, TextWriter error, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long last = 0;
        var routes = await engine.TraceEveryTokenAsync(request, progress: new Progress(traced =>
        {
            // At most a line a second: a small model traces every token in well under one.
            if (clock.ElapsedMilliseconds - last < 1000)
                return;
            last = clock.ElapsedMilliseconds;
            error.WriteLine($"routes: {traced} answer tokens traced");
        }), cancellationToken: cancellationToken);
        await error.WriteLineAsync($"routes: {routes.Count} answer tokens traced in {clock.Elapsed.TotalSeconds:F2} s");
        return routes;
    }

    // Reports on the calling thread, unlike Progress<T>, which posts to a thread pool and may report after the work ends.
    private sealed class Progress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }

    /// <summary>Writes <paramref name="text"/> to the file <paramref name="path"/> (saying so on <paramref name="error"/>), or to <paramref name="output"/> without one.</summary>
    public static async Task WriteAsync(string text, string? path, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        if (path is not null)
        {
            await File.WriteAllTextAsync(path, text, cancellationToken);
            await error.WriteLineAsync($"wrote {path}");
            return;
        }
        await output.WriteAsync(text);
        await output.FlushAsync(cancellationToken);
    }

    public static string Render(CitationResult result, string format, IReadOnlyList<PassageRoutes>? routes = null) => format switch
    {
        "json" => MirageJson.Serialize(result) + "\n",
        "html" => CitationHtml.Render(result, routes),
        _ => CitationText.Render(result),
    };
}
