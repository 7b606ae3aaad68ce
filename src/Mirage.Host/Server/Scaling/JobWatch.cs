using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NATS.Client.Core;
using NATS.Client.KeyValueStore;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// The api's two standing watches, one of each bucket per process rather than one consumer per
/// request: jobs that end wake the requests waiting for them, and worker heartbeats say which
/// models are live (a worker unseen for three of its beats is gone; the bucket's expiry sends no
/// event, so the time of the last beat decides). A watch that breaks (a node lost, a reconnect)
/// starts again, and waiting requests re-read their job meanwhile.
/// </summary>
internal sealed class JobWatch(JobBus bus, IOptions<NatsOptions> nats, ILogger<JobWatch> logger) : BackgroundService
{
    // How often a waiting request re-reads its job, in case its end passed while a watch restarted.
    private static readonly TimeSpan Recheck = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<string, TaskCompletionSource<JobState>> _waiting = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (string Model, DateTimeOffset Seen, double Heartbeat)> _workers = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _workersLoaded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A worker's heartbeat entry: its model, and how often it beats.</summary>
    internal sealed record Beat(
        [property: System.Text.Json.Serialization.JsonPropertyName("model")] string Model,
        [property: System.Text.Json.Serialization.JsonPropertyName("worker")] string Worker,
        [property: System.Text.Json.Serialization.JsonPropertyName("heartbeat_seconds")] double HeartbeatSeconds);

    /// <summary>The model ids some live worker serves, sorted; waits for the first read of the bucket.</summary>
    public async Task<List<string>> LiveModelsAsync(CancellationToken cancellationToken)
    {
        await _workersLoaded.Task.WaitAsync(cancellationToken);
        var now = DateTimeOffset.UtcNow;
        return [.. _workers.Values.Where(w => now - w.Seen < TimeSpan.FromSeconds(3 * w.Heartbeat)).Select(w => w.Model).Distinct().Order(StringComparer.Ordinal)];
    }

    /// <summary>The job's state once it has ended.</summary>
    public async Task<JobState> WhenEndedAsync(JobBus.Connected connected, string id, CancellationToken cancellationToken)
    {
        var ended = _waiting.GetOrAdd(id, _ => new TaskCompletionSource<JobState>(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            while (true)
            {
                // Registered before reading, so an end between the read and the wait is not missed. A read
                // that times out (a leader being elected) is tried again; the request's own limit ends the wait.
                try
                {
                    if (await JobBus.ReadAsync(connected, id, cancellationToken) is { State.Ended: true } current)
                        return current.State;
                }
                catch (NatsException)
                {
                }
                try
                {
                    return await ended.Task.WaitAsync(Recheck, cancellationToken);
                }
                catch (TimeoutException)
                {
                }
            }
        }
        finally
        {
            _waiting.TryRemove(new KeyValuePair<string, TaskCompletionSource<JobState>>(id, ended));
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (await bus.ReadyOrStoppedAsync(stoppingToken) is not { } connected)
            return;
        await Task.WhenAll(
            KeepWatchingAsync("jobs", () => WatchJobsAsync(connected.Jobs, stoppingToken), stoppingToken),
            KeepWatchingAsync("workers", () => WatchWorkersAsync(connected.Workers, stoppingToken), stoppingToken));
    }

    private async Task KeepWatchingAsync(string what, Func<Task> watch, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await watch();
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException)
            {
                // Not the service's own cancel: the watch went silent (see WatchWorkersAsync), which an
                // api without workers sees every two beats, so it is not worth a warning.
                logger.LogDebug("Watching the {What} bucket went silent; starting again", what);
            }
            catch (NatsException e)
            {
                logger.LogWarning("Watching the {What} bucket stopped ({Reason}); starting again", what, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stopping).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    private async Task WatchJobsAsync(INatsKVStore jobs, CancellationToken stopping)
    {
        await foreach (var entry in jobs.WatchAsync<byte[]>(opts: new NatsKVWatchOpts { UpdatesOnly = true, IgnoreDeletes = true }, cancellationToken: stopping))
        {
            if (entry.Value is { Length: > 0 } bytes && _waiting.TryGetValue(entry.Key, out var waiting) && JobState.FromBytes(bytes) is { Ended: true } state)
                waiting.TrySetResult(state);
        }
    }

    private async Task WatchWorkersAsync(INatsKVStore workers, CancellationToken stopping)
    {
        var opts = new NatsKVWatchOpts { OnNoData = _ => { _workersLoaded.TrySetResult(); return ValueTask.FromResult(false); } };
        // Live workers beat every Nats:HeartbeatSeconds, so a watch silent for two beats has stalled (a
        // node lost without an error reaching the client) or has no worker left: it starts again.
        var limit = TimeSpan.FromSeconds(2 * nats.Value.HeartbeatSeconds);
        using var silence = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        silence.CancelAfter(limit);
        await foreach (var entry in workers.WatchAsync<byte[]>(opts: opts, cancellationToken: silence.Token))
        {
            silence.CancelAfter(limit);
            if (entry.Operation != NatsKVOperation.Put || entry.Value is not { Length: > 0 } bytes)
                _workers.TryRemove(entry.Key, out _);
            else if (JsonSerializer.Deserialize<Beat>(bytes) is { } beat)
                _workers[entry.Key] = (beat.Model, entry.Created, beat.HeartbeatSeconds);
            if (entry.Delta == 0)
                _workersLoaded.TrySetResult();
        }
    }
}
