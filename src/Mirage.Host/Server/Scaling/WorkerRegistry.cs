using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NATS.Client.Core;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// A worker's heartbeat: it puts <c>{model key}.{worker id}</c> (its model and beat) into the workers
/// bucket every <see cref="NatsOptions.HeartbeatSeconds"/> and deletes it when it stops. The api
/// (<see cref="JobWatch"/>) counts a worker live for three beats after its last, so a dead worker
/// drops out on its own and the api answers 404 for a model nobody serves.
/// </summary>
internal sealed class WorkerRegistry(JobBus bus, ModelHost host, IOptions<NatsOptions> nats, ILogger<WorkerRegistry> logger) : BackgroundService
{
    /// <summary>This worker's id: host, process and a random part (a restarted process is a new worker).</summary>
    public static string WorkerId { get; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await host.WaitUntilLoadedAsync(stoppingToken))
            return;
        var model = host.Current!.Model.ModelId;
        var key = $"{JobBus.ModelKey(model)}.{WorkerId}";
        var beat = new JobWatch.Beat(model, WorkerId, nats.Value.HeartbeatSeconds);
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
                catch (Exception e) when (e is NatsException or TimeoutException or OperationCanceledException && !stoppingToken.IsCancellationRequested)
                {
                    // A write that times out while the cluster elects a leader must not end the beats for good.
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
