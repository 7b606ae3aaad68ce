using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Mirage.Host.Server;

/// <summary>
/// The bounded queue in front of the model: requests wait here for one of
/// <see cref="ServerOptions.Concurrency"/> workers; a full queue refuses at once (the caller answers
/// 429). Work is cancelled when its request is (timeout, client gone). On shutdown the queue
/// stops taking work, lets queued and running work finish within
/// <see cref="ServerOptions.ShutdownTimeoutSeconds"/>, then cancels what is left.
/// </summary>
public sealed class WorkQueue : BackgroundService
{
    private readonly Channel<WorkItem> _channel;
    private readonly ServerOptions _options;
    private readonly ServerTelemetry _telemetry;
    private readonly CancellationTokenSource _abandon = new();

    /// <summary>Creates the queue with the configured capacity.</summary>
    public WorkQueue(IOptions<ServerOptions> options, ServerTelemetry telemetry)
    {
        _options = options.Value;
        _telemetry = telemetry;
        _channel = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(_options.MaxQueueLength) { FullMode = BoundedChannelFullMode.Wait });
        telemetry.ObserveQueueDepth(() => _channel.Reader.Count);
    }

    /// <summary>Requests waiting now.</summary>
    public int Depth => _channel.Reader.Count;

    /// <summary>
    /// Queues <paramref name="work"/>; null when the queue is full or shutting down. The work gets a
    /// token cancelled with <paramref name="cancellationToken"/> or when shutdown runs out of time.
    /// </summary>
    public Task<T>? TryEnqueue<T>(Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        var item = new WorkItem<T>(work, cancellationToken);
        if (!_channel.Writer.TryWrite(item))
        {
            _telemetry.Rejected.Add(1);
            return null;
        }
        return item.Completion.Task;
    }

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, _options.Concurrency).Select(_ => Task.Run(WorkAsync, CancellationToken.None)));

    private async Task WorkAsync()
    {
        // Reads until the writer is completed on shutdown, so queued work still runs.
        await foreach (var item in _channel.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            _telemetry.QueueWait.Record(item.Waited.Elapsed.TotalSeconds);
            if (!await item.RunAsync(_abandon.Token).ConfigureAwait(false))
                _telemetry.Cancelled.Add(1);
        }
    }

    /// <inheritdoc />
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _channel.Writer.TryComplete();
        var drained = ExecuteTask ?? Task.CompletedTask;
        var deadline = Task.Delay(TimeSpan.FromSeconds(_options.ShutdownTimeoutSeconds), CancellationToken.None);
        if (await Task.WhenAny(drained, deadline).ConfigureAwait(false) != drained)
            await _abandon.CancelAsync().ConfigureAwait(false);
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _abandon.Dispose();
        base.Dispose();
    }

    private abstract class WorkItem
    {
        // The request's span: the work's spans hang under it although a worker runs them.
        private readonly ActivityContext _parent = Activity.Current?.Context ?? default;

        public Stopwatch Waited { get; } = Stopwatch.StartNew();

        /// <summary>Runs the work; false when it was cancelled (before or while running).</summary>
        public abstract Task<bool> RunAsync(CancellationToken abandon);

        protected Activity? StartSpan()
        {
            var span = ServerTelemetry.Traces.StartActivity("mirage.work", ActivityKind.Internal, _parent);
            span?.SetTag("mirage.queue.wait", Waited.Elapsed.TotalSeconds);
            return span;
        }
    }

    private sealed class WorkItem<T>(Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken) : WorkItem
    {
        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async Task<bool> RunAsync(CancellationToken abandon)
        {
            using var span = StartSpan();
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, abandon);
            try
            {
                linked.Token.ThrowIfCancellationRequested();
                Completion.TrySetResult(await work(linked.Token).ConfigureAwait(false));
                return true;
            }
            catch (OperationCanceledException e)
            {
                span?.SetStatus(ActivityStatusCode.Error, "cancelled");
                Completion.TrySetCanceled(e.CancellationToken);
                return false;
            }
            catch (Exception e)
            {
                span?.SetStatus(ActivityStatusCode.Error, e.Message);
                Completion.TrySetException(e);
                return true;
            }
        }
    }
}
