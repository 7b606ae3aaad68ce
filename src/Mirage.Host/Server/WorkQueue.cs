using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Mirage.Core.Citations;

namespace Mirage.Host.Server;

/// <summary>
/// The bounded queue in front of the model: requests wait here for one of
/// <see cref="ServerOptions.Concurrency"/> workers; a full queue refuses at once (the caller answers
/// 429). A worker takes up to <see cref="ServerOptions.BatchSize"/> waiting requests at a time, and
/// the citation requests among them run as one batch (<see cref="MirageCitationEngine.CiteBatchAsync"/>).
/// Work is cancelled when its request is (timeout, client gone). On shutdown the queue stops taking
/// work, lets queued and running work finish within <see cref="ServerOptions.ShutdownTimeoutSeconds"/>
/// of the shutdown's start, then cancels what is left.
/// </summary>
public sealed class WorkQueue : BackgroundService
{
    private readonly Channel<WorkItem> _channel;
    private readonly ServerOptions _options;
    private readonly ServerTelemetry _telemetry;
    private readonly CancellationTokenSource _abandon = new();
    private readonly CancellationTokenRegistration _stopping;

    /// <summary>Creates the queue with the configured capacity.</summary>
    public WorkQueue(IOptions<ServerOptions> options, ServerTelemetry telemetry, IHostApplicationLifetime lifetime)
    {
        _options = options.Value;
        _telemetry = telemetry;
        _channel = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(_options.MaxQueueLength) { FullMode = BoundedChannelFullMode.Wait });
        telemetry.ObserveQueueDepth(() => _channel.Reader.Count);
        // The deadline runs from the start of shutdown: the web server, stopped first, waits for its
        // in-flight requests, so a deadline started in StopAsync would come too late to bound them.
        _stopping = lifetime.ApplicationStopping.Register(() => _abandon.CancelAfter(TimeSpan.FromSeconds(_options.ShutdownTimeoutSeconds)));
    }

    /// <summary>Requests waiting now.</summary>
    public int Depth => _channel.Reader.Count;

    /// <summary>
    /// Queues <paramref name="work"/>; null when the queue is full or shutting down. The work gets a
    /// token cancelled with <paramref name="cancellationToken"/> or when shutdown runs out of time.
    /// </summary>
    public Task<T>? TryEnqueue<T>(Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken) =>
        Add(new DelegateWork<T>(work, cancellationToken));

    /// <summary>Queues a citation of <paramref name="request"/> by <paramref name="model"/>'s engine; it may share a batch with other waiting citations.</summary>
    public Task<CitationResult>? TryEnqueueCitation(LoadedModel model, CitationRequest request, CancellationToken cancellationToken) =>
        Add(new CitationWork(model, request, cancellationToken));

    private Task<T>? Add<T>(WorkItem<T> item)
    {
        if (_channel.Writer.TryWrite(item))
            return item.Completion.Task;
        _telemetry.Rejected.Add(1);
        return null;
    }

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, _options.Concurrency).Select(_ => Task.Run(WorkAsync, CancellationToken.None)));

    private async Task WorkAsync()
    {
        var reader = _channel.Reader;
        // Reads until the writer is completed on shutdown, so queued work still runs.
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            var live = new List<WorkItem>();
            while (live.Count < _options.BatchSize && reader.TryRead(out var item))
            {
                _telemetry.QueueWait.Record(item.Waited.Elapsed.TotalSeconds);
                if (item.CancellationToken.IsCancellationRequested)
                    Cancelled([item]);
                else
                    live.Add(item);
            }
            foreach (var batch in live.OfType<CitationWork>().GroupBy(c => c.Model))
                await CiteAsync(batch.ToList()).ConfigureAwait(false);
            foreach (var item in live)
            {
                if (item is IRunnable work)
                    await RunAsync(item, work).ConfigureAwait(false);
            }
        }
    }

    private async Task RunAsync(WorkItem item, IRunnable work)
    {
        using var span = StartSpan([item]);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(item.CancellationToken, _abandon.Token);
        try
        {
            await work.RunAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            span?.SetStatus(ActivityStatusCode.Error, "cancelled");
            Cancelled([item]);
        }
        catch (Exception e)
        {
            span?.SetStatus(ActivityStatusCode.Error, e.Message);
            item.Fail(e);
        }
    }

    private async Task CiteAsync(IReadOnlyList<CitationWork> batch)
    {
        using var span = StartSpan(batch);
        // The batch runs while anyone still waits for it: cancelled when every caller has left or
        // when shutdown runs out of time.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_abandon.Token);
        int waiting = batch.Count;
        var registrations = batch.Select(item => item.CancellationToken.Register(() =>
        {
            if (Interlocked.Decrement(ref waiting) == 0)
                stop.Cancel();
        })).ToList();
        try
        {
            var model = batch[0].Model;
            IReadOnlyList<CitationResult> results;
            using (ServerTelemetry.StartOperation("cite", model.Model.ModelId))
            {
                results = await model.Engine.CiteBatchAsync(batch.Select(c => c.Request).ToList(), stop.Token).ConfigureAwait(false);
                _telemetry.Record(results);
            }
            for (int i = 0; i < batch.Count; i++)
            {
                if (batch[i].CancellationToken.IsCancellationRequested)
                    Cancelled([batch[i]]);
                else
                    batch[i].Completion.TrySetResult(results[i]);
            }
        }
        catch (OperationCanceledException)
        {
            span?.SetStatus(ActivityStatusCode.Error, "cancelled");
            Cancelled(batch);
        }
        catch (Exception) when (batch.Count > 1)
        {
            // One bad request fails its whole batch; alone, only it fails.
            foreach (var item in batch)
                await CiteAsync([item]).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            span?.SetStatus(ActivityStatusCode.Error, e.Message);
            batch[0].Fail(e);
        }
        finally
        {
            foreach (var registration in registrations)
                registration.Dispose();
        }
    }

    private void Cancelled(IReadOnlyList<WorkItem> items)
    {
        foreach (var item in items)
            item.Cancel();
        _telemetry.Cancelled.Add(items.Count);
    }

    // One span per run of work, under the first request's span (the others are linked), so a
    // request's trace shows its queueing and its model work although a worker ran it.
    private static Activity? StartSpan(IReadOnlyList<WorkItem> items)
    {
        var links = items.Skip(1).Select(i => new ActivityLink(i.Parent)).ToList();
        var span = ServerTelemetry.Traces.StartActivity("mirage.work", ActivityKind.Internal, items[0].Parent, links: links);
        span?.SetTag("mirage.queue.wait", items.Max(i => i.Waited.Elapsed.TotalSeconds));
        span?.SetTag("mirage.batch.size", items.Count);
        return span;
    }

    /// <inheritdoc />
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Queued work still runs (or, past the deadline, is cancelled at once) before the workers end.
        _channel.Writer.TryComplete();
        await (ExecuteTask ?? Task.CompletedTask).WaitAsync(cancellationToken).ConfigureAwait(false);
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _stopping.Dispose();
        _abandon.Dispose();
        base.Dispose();
    }

    private abstract class WorkItem(CancellationToken cancellationToken)
    {
        public CancellationToken CancellationToken => cancellationToken;

        /// <summary>The request's span, captured when it was queued.</summary>
        public ActivityContext Parent { get; } = Activity.Current?.Context ?? default;

        public Stopwatch Waited { get; } = Stopwatch.StartNew();

        public abstract void Cancel();

        public abstract void Fail(Exception error);
    }

    private abstract class WorkItem<T>(CancellationToken cancellationToken) : WorkItem(cancellationToken)
    {
        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override void Cancel() => Completion.TrySetCanceled(CancellationToken);

        public override void Fail(Exception error) => Completion.TrySetException(error);
    }

    /// <summary>Work that runs on its own (citations run in batches instead).</summary>
    private interface IRunnable
    {
        Task RunAsync(CancellationToken cancellationToken);
    }

    private sealed class DelegateWork<T>(Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken) : WorkItem<T>(cancellationToken), IRunnable
    {
        public async Task RunAsync(CancellationToken cancellationToken) =>
            Completion.TrySetResult(await work(cancellationToken).ConfigureAwait(false));
    }

    private sealed class CitationWork(LoadedModel model, CitationRequest request, CancellationToken cancellationToken) : WorkItem<CitationResult>(cancellationToken)
    {
        public LoadedModel Model => model;

        public CitationRequest Request => request;
    }
}
