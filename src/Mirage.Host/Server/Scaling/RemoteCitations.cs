using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Mirage.Core.Citations;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// The api role's citation endpoints: <c>/v1/citations</c> (and <c>/v1/flow</c>) queues the work and answers its
/// result, byte for byte what one process answers (timings aside); <c>/v1/citations/jobs</c>
/// answers 202 at once, and any api finds the job by id in the job bucket.
/// </summary>
internal sealed class RemoteCitations(RemoteJobs jobs, JobBus bus, JobWatch watch, IOptions<ServerOptions> settings)
{
    /// <summary><c>POST /v1/citations</c>.</summary>
    public async Task<IResult> CiteAsync(HttpContext http)
    {
        var (read, invalid) = await CitationsEndpoint.ReadAsync(http, settings.Value);
        if (invalid is not null)
            return invalid;
        var request = read!.Value.Request;
        var (state, error) = await jobs.RunAsync(http, JobMessage.Citation, request.Model, JsonSerializer.SerializeToElement(request, ApiRequests.Json));
        if (error is not null)
            return error;
        if (state!.Status != JobState.Done)
            return RemoteJobs.Problem(state.Error);
        if (string.Equals(http.Request.Query["format"], "html", StringComparison.OrdinalIgnoreCase))
            return MirageServer.HtmlPage(http, Cli.CitationHtml.Render(state.Result!.Deserialize<CitationResult>(MirageJson.Options)!), Cli.CitationHtml.ContentSecurityPolicy);
        return Results.Content(state.Result!.ToJsonString(MirageJson.Options), "application/json; charset=utf-8");
    }

    /// <summary><c>POST /v1/flow</c>: the routes, traced on a worker.</summary>
    public async Task<IResult> FlowAsync(HttpContext http)
    {
        var (read, invalid) = await FlowEndpoint.ReadAsync(http, settings.Value);
        if (invalid is not null)
            return invalid;
        var request = read!.Value.Request;
        var (state, error) = await jobs.RunAsync(http, JobMessage.Flow, request.Model, JsonSerializer.SerializeToElement(request, ApiRequests.Json));
        if (error is not null)
            return error;
        return state!.Status == JobState.Done
            ? Results.Content(state.Result!.ToJsonString(MirageJson.Options), "application/json; charset=utf-8")
            : RemoteJobs.Problem(state.Error);
    }

    /// <summary><c>POST /v1/citations/jobs</c>: 202 with the id and a Location once the job is queued; the same job again for the same <c>Idempotency-Key</c>.</summary>
    public async Task<IResult> CreateJobAsync(HttpContext http)
    {
        var (key, invalid) = CitationJobs.IdempotencyKey(http);
        if (invalid is not null)
            return invalid;
        using var limit = jobs.LimitFor(http);
        var (connected, unreachable) = await jobs.ConnectAsync(http, limit.Token);
        if (unreachable is not null)
            return unreachable;
        var id = key is null ? RemoteJobs.NewId() : RemoteJobs.IdFor(key);
        if (key is not null && await JobBus.ReadAsync(connected!, id, limit.Token) is { } existing)
            return CitationJobs.Accepted(existing.State.Id, existing.State.Status);
        var (read, unreadable) = await CitationsEndpoint.ReadAsync(http, settings.Value);
        if (unreadable is not null)
            return unreadable;
        var request = read!.Value.Request;
        var (state, error) = await jobs.SubmitAsync(http, connected!, id, JobMessage.Citation, request.Model, JsonSerializer.SerializeToElement(request, ApiRequests.Json), limit.Token);
        return error ?? CitationJobs.Accepted(state!.Id, state.Status);
    }

    /// <summary><c>GET /v1/citations/jobs/{id}</c>.</summary>
    public async Task<IResult> GetJobAsync(string id, CancellationToken cancellationToken)
    {
        var connected = await bus.ReadyAsync(cancellationToken);
        return await JobBus.ReadAsync(connected, id, cancellationToken) is { } current
            ? Results.Content(current.State.ToResponse().ToJsonString(), "application/json; charset=utf-8")
            : CitationJobs.NotFound(id);
    }

    /// <summary><c>DELETE /v1/citations/jobs/{id}</c>: ends a job that has not ended, and stops its worker.</summary>
    public async Task<IResult> DeleteJobAsync(string id, CancellationToken cancellationToken)
    {
        var connected = await bus.ReadyAsync(cancellationToken);
        if (await JobBus.ReadAsync(connected, id, cancellationToken) is null)
            return CitationJobs.NotFound(id);
        await RemoteJobs.CancelAsync(connected, id, StatusCodes.Status499ClientClosedRequest, "Cancelled", "The job was cancelled, by DELETE, past Server:RequestTimeoutSeconds, or by shutdown.");
        var (state, _) = (await JobBus.ReadAsync(connected, id, cancellationToken))!.Value;
        return Results.Content(state.ToResponse().ToJsonString(), "application/json; charset=utf-8", statusCode: StatusCodes.Status202Accepted);
    }

    /// <summary><c>GET /v1/models</c>: the models live workers serve.</summary>
    public async Task<IResult> ModelsAsync(CancellationToken cancellationToken)
    {
        var models = await watch.LiveModelsAsync(cancellationToken);
        return Results.Json(new { @object = "list", data = models.Select(id => new { id, @object = "model", created = 0, owned_by = "mirage" }) });
    }
}
