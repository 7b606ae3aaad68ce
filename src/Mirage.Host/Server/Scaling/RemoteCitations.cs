using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Mirage.Core.Citations;
using NATS.Client.JetStream;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// The api role's citations: each request becomes a job on the JetStream work queue (its state
/// written queued to the job bucket first), and <c>/v1/citations</c> waits for the worker to end
/// it; <c>/v1/citations/jobs</c> answers at once. Bodies and statuses are those of the single
/// process: the same validation, 429 with Retry-After when the stream holds
/// <see cref="ServerOptions.MaxQueueLength"/> jobs, 504 past the timeout (and the job is cancelled),
/// 503 while NATS or every worker is away.
/// </summary>
internal sealed class RemoteCitations(JobBus bus, IOptions<ServerOptions> settings, IHostApplicationLifetime lifetime)
{
    private const int MaxMessagesExceeded = 10077;

    /// <summary><c>POST /v1/citations</c>: queue, wait for the end, answer as the single process does.</summary>
    public async Task<IResult> CiteAsync(HttpContext http)
    {
        var options = settings.Value;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
        limit.CancelAfter(TimeSpan.FromSeconds(options.RequestTimeoutSeconds));
        var (submitted, error) = await SubmitAsync(http, limit.Token);
        if (error is not null)
            return error;
        var (connected, state) = submitted!.Value;
        try
        {
            state = await WaitForEndAsync(connected, state.Id, limit.Token);
        }
        catch (OperationCanceledException)
        {
            var (status, title, detail) = http.RequestAborted.IsCancellationRequested ? (StatusCodes.Status499ClientClosedRequest, "Cancelled", "The client left.")
                : lifetime.ApplicationStopping.IsCancellationRequested ? (StatusCodes.Status503ServiceUnavailable, "Shutting down", "The service stopped before this request's work finished; retry against a running instance.")
                : (StatusCodes.Status504GatewayTimeout, "Timed out", $"The request took longer than {options.RequestTimeoutSeconds:0.###} s (Server:RequestTimeoutSeconds), waiting included.");
            // A leaving api leaves its jobs to finish (their results stay fetchable); a client that left or a timeout frees the worker.
            if (status != StatusCodes.Status503ServiceUnavailable)
                await CancelAsync(connected, state.Id, status, title, detail);
            return status == StatusCodes.Status499ClientClosedRequest ? Results.StatusCode(status) : ApiRequests.Problem(status, title, detail);
        }
        if (state.Status != JobState.Done)
            return Problem(state.Error);
        if (string.Equals(http.Request.Query["format"], "html", StringComparison.OrdinalIgnoreCase))
            return MirageServer.HtmlPage(http, Cli.CitationHtml.Render(state.Result!.Deserialize<CitationResult>(MirageJson.Options)!), Cli.CitationHtml.ContentSecurityPolicy);
        return Results.Content(state.Result!.ToJsonString(MirageJson.Options), "application/json; charset=utf-8");
    }

    /// <summary><c>POST /v1/citations/jobs</c>: 202 with the id and a Location, once the job is on the queue.</summary>
    public async Task<IResult> CreateJobAsync(HttpContext http)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        limit.CancelAfter(TimeSpan.FromSeconds(settings.Value.RequestTimeoutSeconds));
        var (submitted, error) = await SubmitAsync(http, limit.Token);
        return error ?? CitationJobs.Accepted(submitted!.Value.State.Id, submitted.Value.State.Status);
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
        await CancelAsync(connected, id, StatusCodes.Status499ClientClosedRequest, "Cancelled", "The job was cancelled, by DELETE, past Server:RequestTimeoutSeconds, or by shutdown.");
        var (state, _) = (await JobBus.ReadAsync(connected, id, cancellationToken))!.Value;
        return Results.Content(state.ToResponse().ToJsonString(), "application/json; charset=utf-8", statusCode: StatusCodes.Status202Accepted);
    }

    /// <summary><c>GET /v1/models</c>: the models live workers serve.</summary>
    public async Task<IResult> ModelsAsync(CancellationToken cancellationToken)
    {
        var connected = await bus.ReadyAsync(cancellationToken);
        var models = await WorkerRegistry.LiveModelsAsync(connected, cancellationToken);
        return Results.Json(new { @object = "list", data = models.Select(id => new { id, @object = "model", created = 0, owned_by = "mirage" }) });
    }

    // Reads and checks the request, picks the model, writes the job queued and publishes it (the job id doubles as
    // JetStream's message id, so a retried publish is stored once).
    private async Task<((JobBus.Connected Connected, JobState State)? Submitted, IResult? Error)> SubmitAsync(HttpContext http, CancellationToken cancellationToken)
    {
        var options = settings.Value;
        var key = http.Request.Headers["Idempotency-Key"].ToString() is { Length: > 0 } given ? given : null;
        if (key is { Length: > 200 })
            return (null, ApiRequests.Problem(StatusCodes.Status400BadRequest, "Invalid request", "The Idempotency-Key header is longer than 200 characters."));
        JobBus.Connected connected;
        try
        {
            connected = await bus.ReadyAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (!http.RequestAborted.IsCancellationRequested)
        {
            return (null, ApiRequests.Problem(StatusCodes.Status503ServiceUnavailable, "Queue not reachable", "The service cannot reach NATS; retry shortly."));
        }
        var id = key is null ? Guid.NewGuid().ToString("N") : Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("idempotency-key:" + key)))[..32];
        if (key is not null && await JobBus.ReadAsync(connected, id, cancellationToken) is { } existing)
            return ((connected, existing.State), null);

        var (read, error) = await CitationsEndpoint.ReadAsync(http, options);
        if (error is not null)
            return (null, error);
        var request = read!.Value.Request;
        var live = await WorkerRegistry.LiveModelsAsync(connected, cancellationToken);
        string? model = request.Model ?? (live.Count == 1 ? live[0] : null);
        if (model is null)
        {
            return (null, live.Count == 0
                ? ApiRequests.Problem(StatusCodes.Status503ServiceUnavailable, "No worker", "No worker serves a model now; start one with: mirage serve --role worker --nats URL.")
                : ApiRequests.Problem(StatusCodes.Status400BadRequest, "Invalid request", $"Several models are served ({string.Join(", ", live)}); name one in 'model'."));
        }
        if (!live.Contains(model))
            return (null, CitationsEndpoint.UnknownModel(model, live));

        var state = new JobState(id, JobState.Queued, model);
        var created = await connected.Jobs.TryCreateAsync(id, state.ToBytes(), cancellationToken: cancellationToken);
        if (!created.Success)
        {
            // The same key raced in from another request: answer with that job.
            return await JobBus.ReadAsync(connected, id, cancellationToken) is { } raced ? ((connected, raced.State), null) : (null, ApiRequests.Problem(StatusCodes.Status409Conflict, "Conflict", "The job could not be created; retry."));
        }
        var message = new JobMessage(id, model, JsonSerializer.SerializeToElement(request, ApiRequests.Json), DateTimeOffset.UtcNow.AddSeconds(options.RequestTimeoutSeconds));
        try
        {
            var ack = await connected.JetStream.PublishAsync(JobBus.JobSubject(JobBus.ModelKey(model)), message.ToBytes(), opts: new NatsJSPubOpts { MsgId = id }, cancellationToken: cancellationToken);
            ack.EnsureSuccess();
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == MaxMessagesExceeded)
        {
            await connected.Jobs.TryDeleteAsync(id, cancellationToken: CancellationToken.None);
            return (null, Scheduling.QueueFull(http, options));
        }
        return ((connected, state), null);
    }

    private static async Task<JobState> WaitForEndAsync(JobBus.Connected connected, string id, CancellationToken cancellationToken)
    {
        await foreach (var entry in connected.Jobs.WatchAsync<byte[]>(id, cancellationToken: cancellationToken))
        {
            if (entry.Value is { Length: > 0 } bytes && JobState.FromBytes(bytes) is { Ended: true } state)
                return state;
        }
        throw new OperationCanceledException(cancellationToken);
    }

    // Ends the job as cancelled unless it ended already, then tells its worker (if any) to stop.
    private static async Task CancelAsync(JobBus.Connected connected, string id, int status, string title, string detail)
    {
        for (int attempt = 0; attempt < 5 && await JobBus.ReadAsync(connected, id, CancellationToken.None) is { State.Ended: false } current; attempt++)
        {
            if (await JobBus.TryWriteAsync(connected, current.State.Fail(status, title, detail), current.Revision, CancellationToken.None) is not null)
                break;
        }
        await connected.Connection.PublishAsync(JobBus.CancelSubject(id), Array.Empty<byte>(), cancellationToken: CancellationToken.None);
    }

    private static IResult Problem(JsonObject? error) => ApiRequests.Problem(
        error?["status"]?.GetValue<int>() ?? StatusCodes.Status500InternalServerError,
        error?["title"]?.GetValue<string>() ?? "Failed",
        error?["detail"]?.GetValue<string>() ?? "The job failed.");
}
