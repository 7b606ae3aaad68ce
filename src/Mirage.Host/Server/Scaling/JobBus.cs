using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Client.KeyValueStore;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// The api's and the workers' shared view of NATS: one connection, the work-queue stream jobs wait
/// in, the bucket that holds each job's state and result, and the bucket of live workers. Connects
/// in the background (the servers may come up after the service) and reconnects on its own;
/// requests wait for it within their own time limit.
/// </summary>
internal sealed class JobBus(IOptions<NatsOptions> nats, IOptions<ServerOptions> server, IHostApplicationLifetime lifetime, ILogger<JobBus> logger)
    : IHostedService, IHealthCheck, IAsyncDisposable
{
    public const string JobsBucket = "mirage-jobs", WorkersBucket = "mirage-workers";

    private readonly TaskCompletionSource<Connected> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private NatsConnection? _connection;

    /// <summary>The connection and what lives on it, once set up.</summary>
    public sealed record Connected(NatsConnection Connection, INatsJSContext JetStream, INatsKVStore Jobs, INatsKVStore Workers);

    /// <summary>The subject jobs for a model are published on.</summary>
    public static string JobSubject(string modelKey) => $"mirage.jobs.{modelKey}";

    /// <summary>The subject a streamed answer's chunks travel on, from its worker to its api.</summary>
    public static string StreamSubject(string id) => $"mirage.stream.{id}";

    /// <summary>The header that numbers a stream's chunks from 1, so a lost one shows.</summary>
    public const string SequenceHeader = "Mirage-Seq";

    /// <summary>The subject a cancel of a job is announced on.</summary>
    public static string CancelSubject(string id) => $"mirage.cancel.{id}";

    /// <summary>
    /// A model id as a subject token and key part: letters, digits, '-' and '_' kept (others become
    /// '_'), at most 40 of them, then 8 hex digits of the id's hash so two ids never share a key.
    /// </summary>
    public static string ModelKey(string modelId)
    {
        var safe = new string([.. modelId.Take(40).Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_')]);
        return $"{safe}-{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(modelId)))[..8]}";
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _connection = new NatsConnection(nats.Value.ToNatsOpts($"mirage-{server.Value.Role}-{Environment.MachineName}"));
        _ = Task.Run(() => SetUpAsync(_connection, lifetime.ApplicationStopping), CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <summary>The set-up bus, waiting for it within <paramref name="cancellationToken"/>.</summary>
    public Task<Connected> ReadyAsync(CancellationToken cancellationToken) => _ready.Task.WaitAsync(cancellationToken);

    /// <summary>The set-up bus for a background service, or null when the service stops first.</summary>
    public async Task<Connected?> ReadyOrStoppedAsync(CancellationToken stopping)
    {
        try
        {
            return await ReadyAsync(stopping);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Whether the bus is set up and connected now.</summary>
    public bool IsConnected => _ready.Task.IsCompletedSuccessfully && _connection?.ConnectionState == NatsConnectionState.Open;

    private async Task SetUpAsync(NatsConnection connection, CancellationToken stopping)
    {
        var options = nats.Value;
        for (int attempt = 1; !stopping.IsCancellationRequested; attempt++)
        {
            try
            {
                await connection.ConnectAsync();
                var js = new NatsJSContext(connection);
                await EnsureStreamAsync(js, options, stopping);
                var jobs = await OpenBucketAsync(js, JobsBucket, "Mirage citation jobs: state and result, by job id",
                    TimeSpan.FromSeconds(server.Value.JobResultSeconds), options.Replicas, stopping);
                var workers = await OpenBucketAsync(js, WorkersBucket, "Mirage workers alive, by model key and worker id",
                    TimeSpan.FromSeconds(options.HeartbeatSeconds * 3), options.Replicas, stopping);
                logger.LogInformation("Connected to NATS at {Servers}: stream {Stream}, buckets {Jobs} and {Workers}", options.RedactedUrl, options.Stream, JobsBucket, WorkersBucket);
                _ready.TrySetResult(new Connected(connection, js, jobs, workers));
                return;
            }
            catch (Exception e) when (e is NatsException or TimeoutException or OperationCanceledException && !stopping.IsCancellationRequested)
            {
                // Never the URL with its user info, nor the password: the redacted list only.
                logger.LogWarning("NATS at {Servers} is not ready (try {Attempt}): {Reason}", options.RedactedUrl, attempt, options.Redact(e.Message));
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(5, attempt)), stopping).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
        _ready.TrySetCanceled(stopping);
    }

    /// <summary>
    /// A key-value bucket (one value per key, kept for <paramref name="lifetime"/>) whose reads go to
    /// its stream's leader. The client library's buckets allow direct gets, which any replica answers
    /// from what it has applied: after a node is lost a follower still catching up answered an older
    /// state of a job, or none, and nats-server before 2.10 serves such reads before it has caught up.
    /// So the bucket's stream is defined here, as the library would define it, with direct gets off.
    /// </summary>
    private static async Task<INatsKVStore> OpenBucketAsync(NatsJSContext js, string bucket, string description, TimeSpan lifetime, int replicas, CancellationToken cancellationToken)
    {
        await js.CreateOrUpdateStreamAsync(new StreamConfig($"KV_{bucket}", [$"$KV.{bucket}.>"])
        {
            Description = description,
            MaxMsgsPerSubject = 1,
            MaxAge = lifetime,
            DuplicateWindow = lifetime < TimeSpan.FromMinutes(2) ? lifetime : TimeSpan.FromMinutes(2),
            Storage = StreamConfigStorage.File,
            NumReplicas = replicas,
            Discard = StreamConfigDiscard.New,
            Retention = StreamConfigRetention.Limits,
            AllowRollupHdrs = true,
            DenyDelete = true,
            AllowDirect = false,
        }, cancellationToken);
        return await new NatsKVContext(js).GetStoreAsync(bucket, cancellationToken);
    }

    // The api owns the stream's limits (its queue length); a worker creates the stream only when it is missing.
    private async Task EnsureStreamAsync(NatsJSContext js, NatsOptions options, CancellationToken cancellationToken)
    {
        var config = new StreamConfig(options.Stream, ["mirage.jobs.>"])
        {
            Description = "Mirage citation jobs waiting for a worker",
            Retention = StreamConfigRetention.Workqueue,
            Storage = StreamConfigStorage.File,
            MaxMsgs = server.Value.MaxQueueLength,
            Discard = StreamConfigDiscard.New,
            NumReplicas = options.Replicas,
            DuplicateWindow = TimeSpan.FromMinutes(2),
        };
        if (server.Value.Role == ServerRoles.Api)
        {
            await js.CreateOrUpdateStreamAsync(config, cancellationToken);
            return;
        }
        try
        {
            await js.GetStreamAsync(options.Stream, cancellationToken: cancellationToken);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            await js.CreateStreamAsync(config, cancellationToken);
        }
    }

    /// <summary>The largest message the connected server takes (its max_payload; 1 MiB by default), less room for headers.</summary>
    public static long MaxMessageBytes(Connected bus) => (bus.Connection.ServerInfo?.MaxPayload ?? 1 << 20) - 4096;

    /// <summary>
    /// A job's state and its revision, or null when the bucket has none (never queued, or expired).
    /// A timeout or any other failure to read throws: "not there" must never be mistaken for "not
    /// answered". The bucket's leader answers (see <see cref="OpenBucketAsync"/>); writes still check the revision.
    /// </summary>
    public static async Task<(JobState State, ulong Revision)?> ReadAsync(Connected bus, string id, CancellationToken cancellationToken)
    {
        NatsResult<NatsKVEntry<byte[]>> entry;
        try
        {
            entry = await bus.Jobs.TryGetEntryAsync<byte[]>(id, cancellationToken: cancellationToken);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            // The leader's "no message" for a key never written, or expired.
            return null;
        }
        if (!entry.Success)
            return entry.Error is NatsKVKeyNotFoundException or NatsKVKeyDeletedException ? null : throw entry.Error;
        return entry.Value.Value is { Length: > 0 } bytes ? (JobState.FromBytes(bytes), entry.Value.Revision) : null;
    }

    /// <summary>
    /// Replaces revision <paramref name="revision"/> of the job's state; the new revision, or null when
    /// another write came first. A write that was not answered throws (it may or may not have landed;
    /// the caller leaves the job unacknowledged, and its next delivery reads which).
    /// </summary>
    public static async Task<ulong?> TryWriteAsync(Connected bus, JobState state, ulong revision, CancellationToken cancellationToken)
    {
        var written = await bus.Jobs.TryUpdateAsync(state.Id, state.ToBytes(), revision, cancellationToken: cancellationToken);
        if (written.Success)
            return written.Value;
        return written.Error is NatsKVWrongLastRevisionException ? null : throw written.Error;
    }

    // About 5 s of tries, 25 ms more apart each time: longer than a leader election on a loaded machine.
    private const int ChangeTries = 20;

    /// <summary>
    /// Writes <paramref name="change"/> of the job's current state, reading again when another write
    /// got between the read and the write, or the read found no state (a leader elected mid-read may
    /// answer from behind); null only when <paramref name="change"/> declines.
    /// Throws when no read and write agree within a few seconds, leaving the job to its next delivery.
    /// </summary>
    public static async Task<(JobState State, ulong Revision)?> ChangeAsync(Connected bus, string id, Func<JobState, JobState?> change, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            if (await ReadAsync(bus, id, cancellationToken) is { } current)
            {
                if (change(current.State) is not { } next)
                    return null;
                if (await TryWriteAsync(bus, next, current.Revision, cancellationToken) is { } revision)
                    return (next, revision);
            }
            if (attempt == ChangeTries)
                throw new TimeoutException($"Job {id}'s state could not be read and written in {ChangeTries} tries.");
            await Task.Delay(TimeSpan.FromMilliseconds(25 * attempt), cancellationToken);
        }
    }

    /// <summary>
    /// The job's state for a delivery of its message: the one stored, or, when none is (past its
    /// lifetime, or a leader elected mid-read answered from behind), a queued one created from the
    /// message, which is the authority. A create that loses to a state already there reads again.
    /// </summary>
    public static async Task<(JobState State, ulong Revision)> ReadOrCreateAsync(Connected bus, JobMessage job, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            if (await ReadAsync(bus, job.Id, cancellationToken) is { } current)
                return current;
            var queued = new JobState(job.Id, JobState.Queued, job.Model);
            var created = await bus.Jobs.TryCreateAsync(job.Id, queued.ToBytes(), cancellationToken: cancellationToken);
            if (created.Success)
                return (queued, created.Value);
            if (created.Error is not NatsKVCreateException)
                throw created.Error;
            if (attempt == ChangeTries)
                throw new TimeoutException($"Job {job.Id}'s state could not be read or created in {ChangeTries} tries.");
            await Task.Delay(TimeSpan.FromMilliseconds(25 * attempt), cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(IsConnected ? HealthCheckResult.Healthy($"connected to NATS ({nats.Value.Stream})")
            : HealthCheckResult.Degraded($"not connected to NATS at {nats.Value.RedactedUrl}"));

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
            await _connection.DisposeAsync();
    }
}
