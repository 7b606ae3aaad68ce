using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// The api role's side of a job: reach NATS, pick the model, write the job queued to the job bucket
/// and publish it (the job id doubles as JetStream's message id, so a retried publish is stored
/// once), wait for its end, cancel it. 429 with Retry-After when the stream holds
/// <see cref="ServerOptions.MaxQueueLength"/> jobs, 503 while NATS or every worker is away, 404 for
/// a model no live worker serves.
/// </summary>
internal sealed class RemoteJobs(JobBus bus, JobWatch watch, IOptions<ServerOptions> settings, IHostApplicationLifetime lifetime)
{
    private const int MaxMessagesExceeded = 10077;

    /// <summary>A fresh job id.</summary>
    public static string NewId() => Guid.NewGuid().ToString("N");

    /// <summary>The job id an <c>Idempotency-Key</c> stands for, the same from every api.</summary>
    public static string IdFor(string idempotencyKey) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("idempotency-key:" + idempotencyKey)))[..32];

    /// <summary>The set-up bus within <paramref name="cancellationToken"/>, or 503 when NATS cannot be reached by then.</summary>
    public async Task<(JobBus.Connected? Connected, IResult? Error)> ConnectAsync(HttpContext http, CancellationToken cancellationToken)
    {
        try
        {
            return (await bus.ReadyAsync(cancellationToken), null);
        }
        catch (OperationCanceledException) when (!http.RequestAborted.IsCancellationRequested)
        {
            return (null, ApiRequests.Problem(StatusCodes.Status503ServiceUnavailable, "Queue not reachable", "The service cannot reach NATS; retry shortly."));
        }
    }

    /// <summary>Queues job <paramref name="id"/> of <paramref name="kind"/> for <paramref name="requestedModel"/> (or the only model served).</summary>
    public async Task<(JobState? State, IResult? Error)> SubmitAsync(HttpContext http, JobBus.Connected connected, string id, string kind, string? requestedModel, JsonElement request, CancellationToken cancellationToken)
    {
        var options = settings.Value;
        var live = await watch.LiveModelsAsync(cancellationToken);
        // Chat, as in one process, answers with the model served whatever an OpenAI client names
        // ("gpt-4o" is many clients' default); only among several models does the name choose.
        if (kind == JobMessage.Chat && requestedModel is not null && !live.Contains(requestedModel) && live.Count == 1)
            requestedModel = null;
        string? model = requestedModel ?? (live.Count == 1 ? live[0] : null);
        if (model is null)
        {
            return (null, live.Count == 0
                ? ApiRequests.Problem(StatusCodes.Status503ServiceUnavailable, "No worker", "No worker serves a model now; start one with: mirage serve --role worker --nats URL.")
                : ApiRequests.Problem(StatusCodes.Status400BadRequest, "Invalid request", $"Several models are served ({string.Join(", ", live)}); name one in 'model'."));
        }
        if (!live.Contains(model))
            return (null, CitationsEndpoint.UnknownModel(model, live));

        var message = new JobMessage(id, kind, model, request, DateTimeOffset.UtcNow.AddSeconds(options.RequestTimeoutSeconds)).ToBytes();
        if (message.Length > JobBus.MaxMessageBytes(connected))
        {
            return (null, ApiRequests.Problem(StatusCodes.Status413PayloadTooLarge, "Request too large",
                $"The request is {message.Length:N0} bytes as a job; the queue's server takes at most {JobBus.MaxMessageBytes(connected):N0} (NATS max_payload). Send fewer or shorter passages, or raise max_payload."));
        }
        var state = new JobState(id, JobState.Queued, model);
        var created = await connected.Jobs.TryCreateAsync(id, state.ToBytes(), cancellationToken: cancellationToken);
        if (!created.Success)
        {
            if (created.Error is not NatsKVCreateException)
                throw created.Error;
            // The same key raced in from another request: answer with that job.
            return await JobBus.ReadAsync(connected, id, cancellationToken) is { } raced ? (raced.State, null) : (null, ApiRequests.Problem(StatusCodes.Status409Conflict, "Conflict", "The job could not be created; retry."));
        }
        try
        {
            var ack = await connected.JetStream.PublishAsync(JobBus.JobSubject(JobBus.ModelKey(model)), message, opts: new NatsJSPubOpts { MsgId = id }, cancellationToken: cancellationToken);
            ack.EnsureSuccess();
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == MaxMessagesExceeded)
        {
            await connected.Jobs.TryDeleteAsync(id, cancellationToken: CancellationToken.None);
            return (null, Scheduling.QueueFull(http, options));
        }
        return (state, null);
    }

    /// <summary>
    /// Queues a job and waits for its end within the request's time; on a timeout or a client that
    /// left, the job is cancelled on its worker and the answer is what one process answers then
    /// (504, or 499 for the log); on shutdown, 503 (the job goes on, its result fetchable by id).
    /// </summary>
    public async Task<(JobState? State, IResult? Error)> RunAsync(HttpContext http, string kind, string? model, JsonElement request)
    {
        using var limit = LimitFor(http);
        var (connected, unreachable) = await ConnectAsync(http, limit.Token);
        if (unreachable is not null)
            return (null, unreachable);
        var (state, error) = await SubmitAsync(http, connected!, NewId(), kind, model, request, limit.Token);
        if (error is not null)
            return (null, error);
        try
        {
            return (await watch.WhenEndedAsync(connected!, state!.Id, limit.Token), null);
        }
        catch (OperationCanceledException)
        {
            return (null, await AbandonAsync(http, connected!, state!.Id));
        }
    }

    /// <summary>
    /// A token for a request's whole life: the client, <see cref="ServerOptions.RequestTimeoutSeconds"/>,
    /// and shutdown, which leaves waiting requests <see cref="ServerOptions.ShutdownTimeoutSeconds"/>
    /// to get their answers before they are told 503 (the jobs themselves go on).
    /// </summary>
    public RequestLimit LimitFor(HttpContext http) => new(settings.Value, http.RequestAborted, lifetime.ApplicationStopping);

    /// <summary>See <see cref="LimitFor"/>.</summary>
    internal sealed class RequestLimit : IDisposable
    {
        private readonly CancellationTokenSource _source;
        private readonly CancellationTokenRegistration _stopping;

        public RequestLimit(ServerOptions options, CancellationToken client, CancellationToken stopping)
        {
            _source = CancellationTokenSource.CreateLinkedTokenSource(client);
            _source.CancelAfter(TimeSpan.FromSeconds(options.RequestTimeoutSeconds));
            _stopping = stopping.Register(() => _source.CancelAfter(TimeSpan.FromSeconds(options.ShutdownTimeoutSeconds)));
        }

        public CancellationToken Token => _source.Token;

        public void Dispose()
        {
            _stopping.Dispose();
            _source.Dispose();
        }
    }

    /// <summary>What a request whose wait was cut short answers; the job is cancelled unless the api itself is stopping.</summary>
    public async Task<IResult> AbandonAsync(HttpContext http, JobBus.Connected connected, string id)
    {
        if (http.RequestAborted.IsCancellationRequested)
        {
            await CancelAsync(connected, id, StatusCodes.Status499ClientClosedRequest, "Cancelled", "The client left.");
            return Results.StatusCode(StatusCodes.Status499ClientClosedRequest);
        }
        if (lifetime.ApplicationStopping.IsCancellationRequested)
            return ApiRequests.Problem(StatusCodes.Status503ServiceUnavailable, "Shutting down", "The service stopped before this request's work finished; retry against a running instance.");
        var detail = $"The request took longer than {settings.Value.RequestTimeoutSeconds:0.###} s (Server:RequestTimeoutSeconds), waiting included.";
        await CancelAsync(connected, id, StatusCodes.Status504GatewayTimeout, "Timed out", detail);
        return ApiRequests.Problem(StatusCodes.Status504GatewayTimeout, "Timed out", detail);
    }

    /// <summary>The job's state once it has ended.</summary>
    public Task<JobState> WaitForEndAsync(JobBus.Connected connected, string id, CancellationToken cancellationToken) => watch.WhenEndedAsync(connected, id, cancellationToken);

    /// <summary>
    /// Runs an api endpoint, answering 503 with Retry-After when NATS does not answer in time (a
    /// node lost, the cluster electing a leader) rather than failing with 500.
    /// </summary>
    public async Task<IResult> GuardAsync(HttpContext http, Func<Task<IResult>> endpoint)
    {
        try
        {
            return await endpoint();
        }
        catch (Exception e) when (e is NatsException or TimeoutException && !http.Response.HasStarted)
        {
            http.Response.Headers.RetryAfter = settings.Value.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return ApiRequests.Problem(StatusCodes.Status503ServiceUnavailable, "Queue not reachable", "NATS did not answer in time; retry shortly.");
        }
    }

    /// <summary>Ends the job as cancelled unless it ended already, then tells its worker (if any) to stop.</summary>
    public static async Task CancelAsync(JobBus.Connected connected, string id, int status, string title, string detail)
    {
        await JobBus.ChangeAsync(connected, id, s => s.Ended ? null : s.Fail(status, title, detail), CancellationToken.None);
        await connected.Connection.PublishAsync(JobBus.CancelSubject(id), Array.Empty<byte>(), cancellationToken: CancellationToken.None);
    }

    /// <summary>A failed job's problem details as the response.</summary>
    public static IResult Problem(JsonObject? error) => ApiRequests.Problem(
        error?["status"]?.GetValue<int>() ?? StatusCodes.Status500InternalServerError,
        error?["title"]?.GetValue<string>() ?? "Failed",
        error?["detail"]?.GetValue<string>() ?? "The job failed.");
}
