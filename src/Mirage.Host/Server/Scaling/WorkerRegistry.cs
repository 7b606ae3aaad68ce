using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NATS.Client.Core;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// Which models workers serve now. A worker puts <c>{model key}.{worker id}</c> into the workers
/// bucket every <see cref="NatsOptions.HeartbeatSeconds"/>; the bucket forgets an entry three beats
/// after its last put, so a dead worker drops out on its own and the api answers 404 for a model
/// nobody serves.
/// </summary>
internal sealed class WorkerRegistry(JobBus bus, ModelHost host, IOptions<NatsOptions> nats, ILogger<WorkerRegistry> logger) : BackgroundService
{
    /// <summary>This worker's id: host, process and a random part (a restarted process is a new worker).</summary>
    public static string WorkerId { get; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}";

    private sealed record Entry([property: JsonPropertyName("model")] string Model, [property: JsonPropertyName("worker")] string Worker);

    /// <summary>The model ids some live worker serves, sorted.</summary>
    public static async Task<List<string>> LiveModelsAsync(JobBus.Connected connected, CancellationToken cancellationToken)
    {
        var models = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var entry in connected.Workers.WatchAsync<byte[]>(opts: new() { IgnoreDeletes = true, OnNoData = _ => ValueTask.FromResult(true) }, cancellationToken: cancellationToken))
        {
            if (entry.Value is { Length: > 0 } bytes && JsonSerializer.Deserialize<Entry>(bytes) is { } worker)
                models.Add(worker.Model);
            if (entry.Delta == 0)
                break;
        }
        return [.. models];
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await host.WaitUntilLoadedAsync(stoppingToken))
            return;
        var model = host.Current!.Model.ModelId;
        var key = $"{JobBus.ModelKey(model)}.{WorkerId}";
        var beat = new Entry(model, WorkerId);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(nats.Value.HeartbeatSeconds));
        try
        {
            var connected = await bus.ReadyAsync(stoppingToken);
            do
            {
                try
                {
                    await connected.Workers.PutAsync(key, JsonSerializer.SerializeToUtf8Bytes(beat), cancellationToken: stoppingToken);
                }
                catch (NatsException e)
                {
                    logger.LogWarning("Heartbeat to NATS failed: {Reason}", nats.Value.Redact(e.Message));
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Leaving: say so at once rather than three beats later.
            if (bus.IsConnected)
                await (await bus.ReadyAsync(CancellationToken.None)).Workers.TryDeleteAsync(key, cancellationToken: CancellationToken.None);
        }
    }
}
