using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NATS.Client.Core;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// The api's <c>mirage.queue.depth</c>: the jobs in the work queue (waiting or running, whichever
/// api queued them), read from the stream every <see cref="NatsOptions.HeartbeatSeconds"/> so that
/// a metrics collector never waits on NATS. One process's gauge counts its in-memory queue instead.
/// </summary>
internal sealed class QueueDepth(JobBus bus, IOptions<NatsOptions> nats, ServerTelemetry telemetry, ILogger<QueueDepth> logger) : BackgroundService
{
    private long _depth;

    /// <summary>The jobs in the stream at the last reading.</summary>
    public long Depth => Interlocked.Read(ref _depth);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        telemetry.ObserveQueueDepth(() => (int)Depth);
        if (await bus.ReadyOrStoppedAsync(stoppingToken) is not { } connected)
            return;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(nats.Value.HeartbeatSeconds));
        do
        {
            try
            {
                var stream = await connected.JetStream.GetStreamAsync(nats.Value.Stream, cancellationToken: stoppingToken);
                Interlocked.Exchange(ref _depth, stream.Info.State.Messages);
            }
            catch (Exception e) when (e is NatsException or TimeoutException && !stoppingToken.IsCancellationRequested)
            {
                // The last reading stands until NATS answers again (a reconnect, an election).
                logger.LogDebug("Reading the queue depth failed: {Reason}", nats.Value.Redact(e.Message));
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
