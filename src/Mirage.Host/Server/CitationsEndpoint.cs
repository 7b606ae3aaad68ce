using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Mirage.Core;
using Mirage.Core.Citations;

namespace Mirage.Host.Server;

/// <summary>A passage in a request.</summary>
public sealed record PassageInput(string Text, string? Id = null, string? Title = null, string? Url = null)
{
    /// <summary>Request passages as engine passages; a passage without an id is numbered from 1.</summary>
    public static List<Passage> ToPassages(IReadOnlyList<PassageInput> passages) =>
        passages.Select((p, i) => new Passage(p.Id ?? (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), p.Title, p.Text, p.Url)).ToList();

    /// <summary>What is wrong with a request's passages (too many, or one without text), or null.</summary>
    public static string? Problem(IReadOnlyList<PassageInput> passages, int max) =>
        passages.Count > max ? $"{passages.Count} passages; at most {max} are accepted (Server:MaxPassages)."
        : passages.Select((p, i) => (p, i)).FirstOrDefault(x => string.IsNullOrWhiteSpace(x.p.Text)) is { p: not null } blank ? $"passages[{blank.i}].text is empty."
        : null;
}

/// <summary>Citation settings a request may change (all optional).</summary>
public sealed record CitationSettings(string? Filter = null, double? TopPercent = null, int? TopK = null, int? AtMostCitations = null, double? CtiStd = null, string? NoContext = null,
    string? Method = null, string? ScoredTokens = null, bool? Verify = null, bool? Evidence = null)
{
    /// <summary>The engine options these settings give, within the deployment's <paramref name="server"/> settings (methods allowed, work budget).</summary>
    public CitationOptions ToOptions(ServerOptions server)
    {
        var options = CitationSettingNames.Apply(new CitationOptions(), Method, Filter, TopPercent, TopK, AtMostCitations, CtiStd, NoContext, ScoredTokens, Verify, Evidence);
        if (server.Methods.Count > 0 && !server.Methods.Contains(options.MethodName))
            throw new MirageException($"Method '{options.MethodName}' is turned off on this server; use {string.Join(", ", server.Methods)} (Server:Methods).");
        options = options with { MaxTokenPasses = server.MaxTokenPasses };
        options.Validate();
        return options;
    }
}

/// <summary>Body of <c>POST /v1/citations</c>; <paramref name="Model"/> picks among the models workers serve (optional with one).</summary>
public sealed record CitationsRequest(string Question, IReadOnlyList<PassageInput> Passages, string Answer, CitationSettings? Options = null, string? Model = null)
{
    /// <summary>The engine's request, with <paramref name="options"/> already checked against the server's settings.</summary>
    public CitationRequest ToEngineRequest(CitationOptions options) => new(Question, PassageInput.ToPassages(Passages), Answer, options);

    /// <summary>The engine's options for this request within the deployment's <paramref name="server"/> settings (<see cref="CitationSettings.ToOptions"/>).</summary>
    public CitationOptions EngineOptions(ServerOptions server) => (Options ?? new CitationSettings()).ToOptions(server);
}

/// <summary>
/// <c>POST /v1/citations</c>: cite a given answer against passages. The response is the engine's
/// result (as <c>mirage cite --format json</c>) plus OpenAI-style <c>annotations</c>; with
/// <c>?format=html</c>, the same page <c>mirage cite --format html</c> writes.
/// </summary>
internal static class CitationsEndpoint
{
    public static async Task<IResult> HandleAsync(HttpContext http, ModelHost host, WorkQueue queue, IOptions<ServerOptions> settings)
    {
        var options = settings.Value;
        var (prepared, error) = await PrepareAsync(http, host, options);
        if (error is not null)
            return error;
        var (loaded, citationRequest) = prepared!.Value;
        var outcome = await Scheduling.RunAsync(http, options, ct => queue.TryEnqueueCitation(loaded, citationRequest, ct));
        if (outcome.Error is not null)
            return outcome.Error;
        var result = outcome.Value!;
        if (string.Equals(http.Request.Query["format"], "html", StringComparison.OrdinalIgnoreCase))
            return MirageServer.HtmlPage(http, Cli.CitationHtml.Render(result), Cli.CitationHtml.ContentSecurityPolicy);
        return Results.Content(ToJson(result).ToJsonString(MirageJson.Options), "application/json; charset=utf-8");
    }

    /// <summary>
    /// Reads, checks and turns a request body into the engine's request for the loaded model,
    /// within the server's limits; the error response instead when the body is wrong, it names
    /// another model, or the model is not ready.
    /// </summary>
    public static async Task<((LoadedModel Model, CitationRequest Request)? Prepared, IResult? Error)> PrepareAsync(HttpContext http, ModelHost host, ServerOptions options)
    {
        var (read, error) = await ReadAsync(http, options);
        if (error is not null)
            return (null, error);
        var (request, citationOptions) = read!.Value;
        var (loaded, unavailable) = ModelFor(host, request.Model);
        return unavailable is not null ? (null, unavailable) : ((loaded!, request.ToEngineRequest(citationOptions)), null);
    }

    /// <summary>The loaded model for a request naming <paramref name="model"/> (or none); 503 while it loads, 404 for another model.</summary>
    public static (LoadedModel? Loaded, IResult? Error) ModelFor(ModelHost host, string? model)
    {
        if (host.Current is not { } loaded)
            return (null, ApiRequests.Problem(StatusCodes.Status503ServiceUnavailable, "Model not ready", host.Unavailable));
        if (model is not null && model != loaded.Model.ModelId)
            return (null, UnknownModel(model, [loaded.Model.ModelId]));
        return (loaded, null);
    }

    /// <summary>Reads and checks a request body within the server's limits (no model needed); the error response instead.</summary>
    public static async Task<((CitationsRequest Request, CitationOptions Options)? Read, IResult? Error)> ReadAsync(HttpContext http, ServerOptions options)
    {
        var (request, error) = await ApiRequests.ReadAsync<CitationsRequest>(http.Request, http.RequestAborted);
        if (error is not null)
            return (null, error);
        var (citation, invalid) = Check(request!, options);
        return invalid is not null ? (null, invalid) : ((request!, citation!), null);
    }

    /// <summary>Checks a request within the server's limits: the engine's options for it, or the error response.</summary>
    public static (CitationOptions? Options, IResult? Error) Check(CitationsRequest request, ServerOptions options)
    {
        if (Validate(request, options) is { } invalid)
            return (null, invalid);
        try
        {
            return (request.EngineOptions(options), null);
        }
        catch (Exception e) when (e is MirageException or ArgumentException)
        {
            return (null, ApiRequests.Problem(StatusCodes.Status400BadRequest, "Invalid options", e.Message));
        }
    }

    /// <summary>404 for a model nobody here serves, naming those that are served.</summary>
    public static IResult UnknownModel(string model, IReadOnlyCollection<string> served) =>
        ApiRequests.Problem(StatusCodes.Status404NotFound, "Unknown model", served.Count == 0
            ? $"No worker serves '{model}', nor any other model now."
            : $"No worker serves '{model}'; served: {string.Join(", ", served)}.");

    /// <summary>The engine's result as JSON, with OpenAI-style annotations.</summary>
    public static JsonObject ToJson(CitationResult result)
    {
        var json = JsonSerializer.SerializeToNode(result, MirageJson.Options)!.AsObject();
        json["annotations"] = Annotations(result);
        return json;
    }

    private static IResult? Validate(CitationsRequest request, ServerOptions options)
    {
        string? problem =
            string.IsNullOrWhiteSpace(request.Answer) ? "'answer' is empty: there is nothing to cite."
            : request.Passages.Count == 0 ? "'passages' is empty: citations need at least one passage."
            : PassageInput.Problem(request.Passages, options.MaxPassages);
        return problem is null ? null : ApiRequests.Problem(StatusCodes.Status400BadRequest, "Invalid request", problem);
    }

    /// <summary>OpenAI's <c>url_citation</c> annotations (UTF-16 indices, end exclusive) with Mirage's passage id and score.</summary>
    public static JsonArray Annotations(CitationResult result)
    {
        var annotations = new JsonArray();
        foreach (var sentence in result.Sentences)
        {
            foreach (var citation in sentence.Citations)
            {
                var passage = result.Passages[citation.PassageIndex];
                var annotation = ApiRequests.UrlCitation(passage.Url, passage.Id, passage.Title, sentence.Start, sentence.End, citation.Score);
                annotation.Insert(0, "type", "url_citation");
                annotations.Add(annotation);
            }
        }
        return annotations;
    }
}
