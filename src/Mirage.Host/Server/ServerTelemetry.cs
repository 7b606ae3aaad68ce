using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Mirage.Host.Server;

/// <summary>
/// The service's OpenTelemetry instruments (System.Diagnostics metrics and traces, which any
/// OpenTelemetry SDK or <c>dotnet-counters</c> collects under <see cref="Name"/>): queue depth and
/// wait, rejected and cancelled work, tokens attributed and passes run; spans carry <c>gen_ai.*</c>
/// attributes. Request duration is ASP.NET Core's own <c>http.server.request.duration</c>.
/// </summary>
public sealed class ServerTelemetry
{
    /// <summary>Name of the meter and of the activity source.</summary>
    public const string Name = "Mirage.Server";

    /// <summary>The spans.</summary>
    public static ActivitySource Traces { get; } = new(Name);

    private readonly Meter _meter;

    /// <summary>Creates the instruments on a meter from <paramref name="meters"/> (one per service provider).</summary>
    public ServerTelemetry(IMeterFactory meters)
    {
        _meter = meters.Create(Name);
        QueueWait = _meter.CreateHistogram<double>("mirage.queue.wait", "s", "Time requests waited for the model.");
        TokensAttributed = _meter.CreateCounter<long>("mirage.tokens.attributed", "{token}", "Answer tokens whose context dependence was scored.");
        Passes = _meter.CreateCounter<long>("mirage.passes", "{pass}", "Model passes run for attribution.");
        Rejected = _meter.CreateCounter<long>("mirage.queue.rejected", "{request}", "Requests answered 429 because the queue was full.");
        Cancelled = _meter.CreateCounter<long>("mirage.work.cancelled", "{request}", "Model work cancelled before it finished (client gone, timeout, shutdown).");
    }

    /// <summary>Seconds a request waited in the queue.</summary>
    public Histogram<double> QueueWait { get; }

    /// <summary>Answer tokens attributed.</summary>
    public Counter<long> TokensAttributed { get; }

    /// <summary>Forward and backward passes run (tag <c>mirage.pass</c>).</summary>
    public Counter<long> Passes { get; }

    /// <summary>Requests rejected because the queue was full.</summary>
    public Counter<long> Rejected { get; }

    /// <summary>Model work cancelled before it finished.</summary>
    public Counter<long> Cancelled { get; }

    /// <summary>
    /// Starts a span for one model operation, named and tagged after OpenTelemetry's GenAI
    /// conventions (<c>"{operation} {model}"</c>, <c>gen_ai.operation.name</c>, <c>gen_ai.request.model</c>).
    /// </summary>
    public static Activity? StartOperation(string operation, string model)
    {
        var span = Traces.StartActivity($"{operation} {model}");
        span?.SetTag("gen_ai.operation.name", operation);
        span?.SetTag("gen_ai.provider.name", "mirage");
        span?.SetTag("gen_ai.request.model", model);
        return span;
    }

    /// <summary>Counts what citations cost (answer tokens attributed, passes by kind) and tags <see cref="Activity.Current"/> with the totals.</summary>
    public void Record(params IReadOnlyList<Mirage.Core.Citations.CitationResult> results)
    {
        int tokens = results.Sum(r => r.Tokens.Count), forwards = results.Sum(r => r.Cost.ForwardPasses), backwards = results.Sum(r => r.Cost.BackwardPasses);
        TokensAttributed.Add(tokens);
        Passes.Add(forwards, new KeyValuePair<string, object?>("mirage.pass", "forward"));
        Passes.Add(backwards, new KeyValuePair<string, object?>("mirage.pass", "backward"));
        Activity.Current?.SetTag("mirage.tokens.attributed", tokens)
            .SetTag("mirage.passes.forward", forwards)
            .SetTag("mirage.passes.backward", backwards)
            .SetTag("mirage.citations", results.Sum(r => r.Sentences.Sum(s => s.Citations.Count)));
    }

    /// <summary>Registers the queue-depth gauge over <paramref name="depth"/>.</summary>
    public void ObserveQueueDepth(Func<int> depth) =>
        _meter.CreateObservableGauge("mirage.queue.depth", depth, "{request}", "Requests waiting for the model.");
}
