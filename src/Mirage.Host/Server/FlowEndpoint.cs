using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Mirage.Core.Citations;
using Mirage.Core.Flow;

namespace Mirage.Host.Server;

/// <summary>
/// Body of <c>POST /v1/flow</c>: the body of <c>/v1/citations</c> plus the answer sentence or the
/// answer token to trace (0-based; exactly one) and the contribution threshold.
/// </summary>
public sealed record FlowRequest(string Question, IReadOnlyList<PassageInput> Passages, string Answer, int? Sentence = null, int? Token = null, double? Threshold = null,
    CitationSettings? Options = null, string? Model = null)
{
    /// <summary>The lowest threshold accepted: below it a long input's graph grows past what a response should carry.</summary>
    public const double MinThreshold = 0.01;

    /// <summary>The citation request the routes are traced on.</summary>
    public CitationsRequest AsCitation() => new(Question, Passages, Answer, Options, Model);
}

/// <summary>
/// <c>POST /v1/flow</c>: why an answer sentence (or token) rests on the passages: the routes graph
/// (<c>graph</c>: nodes, edges with weights, token shares), each passage's route share
/// (<c>passages</c>) and the logit lens at the output predicting the first traced token (<c>lens</c>).
/// </summary>
internal static class FlowEndpoint
{
    public static async Task<IResult> HandleAsync(HttpContext http, ModelHost host, WorkQueue queue, IOptions<ServerOptions> settings)
    {
        var options = settings.Value;
        var (read, error) = await ReadAsync(http, options);
        if (error is not null)
            return error;
        var (request, citation) = read!.Value;
        var (loaded, unavailable) = CitationsEndpoint.ModelFor(host, request.Model);
        if (unavailable is not null)
            return unavailable;
        var outcome = await Scheduling.RunAsync(http, options, ct => queue.TryEnqueue(c => Trace(loaded!, request, citation, c), ct));
        return outcome.Error ?? Results.Content(JsonSerializer.Serialize(outcome.Value, MirageJson.Options), "application/json; charset=utf-8");
    }

    /// <summary>Traces <paramref name="request"/> on <paramref name="loaded"/> (also what a worker runs for the api role).</summary>
    public static Task<PassageRoutes> Trace(LoadedModel loaded, FlowRequest request, CitationOptions citation, CancellationToken cancellationToken) =>
        loaded.Engine.TraceRoutesAsync(request.AsCitation().ToEngineRequest(citation), request.Sentence, request.Token, request.Threshold ?? RouteTracer.DefaultThreshold, cancellationToken);

    /// <summary>Reads and checks a body within the server's limits (no model needed); the error response instead.</summary>
    public static async Task<((FlowRequest Request, CitationOptions Options)? Read, IResult? Error)> ReadAsync(HttpContext http, ServerOptions options)
    {
        var (request, error) = await ApiRequests.ReadAsync<FlowRequest>(http.Request, http.RequestAborted);
        if (error is not null)
            return (null, error);
        string? problem =
            (request!.Sentence is null) == (request.Token is null) ? "Name exactly one of 'sentence' (0-based answer sentence) or 'token' (0-based answer token)."
            : request.Sentence < 0 || request.Token < 0 ? "'sentence' and 'token' count from 0."
            : request.Threshold is double t && !(t >= FlowRequest.MinThreshold && t < 0.5) ? $"'threshold' must be in [{FlowRequest.MinThreshold}, 0.5), got {t}."
            : null;
        if (problem is not null)
            return (null, ApiRequests.Problem(StatusCodes.Status400BadRequest, "Invalid request", problem));
        var (citation, invalid) = CitationsEndpoint.Check(request.AsCitation(), options);
        return invalid is not null ? (null, invalid) : ((request, citation!), null);
    }
}
