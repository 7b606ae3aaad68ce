using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Mirage.Core;
using Mirage.Core.Citations;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// The worker role: pulls its model's jobs (citations and chat completions) from the JetStream work
/// queue through a durable consumer shared by every worker of that model, runs each, stores the
/// result in the job bucket, and only then acknowledges it. A streamed answer's chunks go to its
/// api over the job's stream subject as they are generated. While a job runs it reports progress every third of the ack wait, so only a
/// dead worker's job goes to another worker. A job that ended already (its worker died after storing
/// the result) is acknowledged without running it again; one delivered more than
/// <see cref="NatsOptions.MaxAttempts"/> times ends failed, naming the setting.
/// </summary>
internal sealed class JobWorker(JobBus bus, ModelHost host, ServerTelemetry telemetry, IOptions<ServerOptions> server, IOptions<NatsOptions> nats, ILogger<JobWorker> logger) : BackgroundService
{
    /// <summary>Why a streamed job delivered again ends failed: its earlier worker may have published tokens.</summary>
    public const string StoppedMidStream = "The worker streaming this answer stopped mid-answer; the part sent cannot be taken back, so the answer is not started again.";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await host.WaitUntilLoadedAsync(stoppingToken))
            return;
        var loaded = host.Current!;
        var connected = await bus.ReadyAsync(stoppingToken);
        var consumer = await ConsumerAsync(connected, JobBus.ModelKey(loaded.Model.ModelId), stoppingToken);
        logger.LogInformation("Worker {Worker} takes jobs for {Model} from {Stream}", WorkerRegistry.WorkerId, loaded.Model.ModelId, nats.Value.Stream);
        await Task.WhenAll(Enumerable.Range(0, server.Value.Concurrency).Select(_ => PullAsync(consumer, connected, loaded, stoppingToken)));
    }

    // The model's durable consumer, asked for until JetStream answers: a request that meets a leader
    // election goes unanswered, and an exception here would end the worker process.
    private async Task<INatsJSConsumer> ConsumerAsync(JobBus.Connected connected, string key, CancellationToken stopping)
    {
        var config = new ConsumerConfig($"workers-{key}")
        {
            DurableName = $"workers-{key}",
            FilterSubject = JobBus.JobSubject(key),
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = TimeSpan.FromSeconds(nats.Value.AckWaitSeconds),
            // One delivery past the attempts, to record that the job ran out of them.
            MaxDeliver = nats.Value.MaxAttempts + 1,
        };
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await connected.JetStream.CreateOrUpdateConsumerAsync(nats.Value.Stream, config, stopping);
            }
            catch (Exception e) when (e is NatsException or TimeoutException or OperationCanceledException && !stopping.IsCancellationRequested)
            {
                logger.LogWarning("The jobs consumer is not ready (try {Attempt}): {Reason}", attempt, nats.Value.Redact(e.Message));
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(5, attempt)), stopping);
            }
        }
    }

    private async Task PullAsync(INatsJSConsumer consumer, JobBus.Connected connected, LoadedModel loaded, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                // A pull whose server dies unanswered is given up after a while, and pulled again.
                using var pull = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                pull.CancelAfter(TimeSpan.FromSeconds(15));
                var message = await consumer.NextAsync<byte[]>(opts: new NatsJSNextOpts { Expires = TimeSpan.FromSeconds(5), IdleHeartbeat = TimeSpan.FromSeconds(1) }, cancellationToken: pull.Token);
                if (message is not null)
                    await HandleAsync(message, connected, loaded, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NatsException or OperationCanceledException or TimeoutException)
            {
                // A lost connection, a restarting server, a leader being elected: the client reconnects,
                // and a job left unacknowledged is delivered again.
                logger.LogWarning("Taking jobs from NATS failed: {Reason}", nats.Value.Redact(e.Message));
                await Task.Delay(TimeSpan.FromSeconds(1), stopping).ContinueWith(_ => { }, TaskScheduler.Default);
            }
            catch (Exception e)
            {
                // A fault of Mirage's in one job must not stop the worker taking the others.
                logger.LogError(e, "A job failed unexpectedly; it will be delivered again");
                await Task.Delay(TimeSpan.FromSeconds(1), stopping).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    private async Task HandleAsync(INatsJSMsg<byte[]> message, JobBus.Connected connected, LoadedModel loaded, CancellationToken stopping)
    {
        JobMessage job;
        try
        {
            job = JobMessage.FromBytes(message.Data ?? []);
        }
        catch (JsonException e)
        {
            logger.LogError("A job on {Subject} is not a Mirage job ({Reason}); dropped", message.Subject, e.Message);
            await message.AckTerminateAsync(cancellationToken: CancellationToken.None);
            return;
        }
        var current = await JobBus.ReadOrCreateAsync(connected, job, stopping);
        if (current.State.Ended)
        {
            // Ended already (by this job's earlier worker, or a cancel): nothing to do twice.
            await message.AckAsync(cancellationToken: CancellationToken.None);
            return;
        }
        var state = current.State;
        if (state.Streamed)
        {
            await EndAsync(connected, message, state.Fail(StatusCodes.Status500InternalServerError, "Failed", StoppedMidStream));
            return;
        }
        var attempts = (int)(message.Metadata?.NumDelivered ?? 1);
        if (attempts > nats.Value.MaxAttempts)
        {
            await EndAsync(connected, message, state.Fail(StatusCodes.Status500InternalServerError, "Failed",
                $"The job was tried {nats.Value.MaxAttempts} times and each time its worker stopped before it ended (Nats:MaxAttempts); it is not tried again."));
            return;
        }
        if (DateTimeOffset.UtcNow >= job.Deadline)
        {
            await EndAsync(connected, message, state.Fail(StatusCodes.Status504GatewayTimeout, "Timed out", "The job waited past its deadline (Server:RequestTimeoutSeconds) before a worker took it."));
            return;
        }
        if (await JobBus.ChangeAsync(connected, job.Id, s => s.Ended ? null : s with { Status = JobState.Running, Worker = WorkerRegistry.WorkerId }, stopping) is not { } taken)
        {
            // A cancel ended it first.
            await message.AckAsync(cancellationToken: CancellationToken.None);
            return;
        }
        (state, var running) = taken;

        using var work = new CancellationTokenSource(job.Deadline - DateTimeOffset.UtcNow);
        using var done = new CancellationTokenSource();
        bool cancelledByClient = false;
        var watchers = Task.WhenAll(
            ReportProgressAsync(message, done.Token),
            WatchCancelAsync(connected.Connection, job.Id, () => { cancelledByClient = true; work.Cancel(); }, done.Token));
        // Shutdown lets the job finish within Server:ShutdownTimeoutSeconds, then hands it back.
        using var shutdown = stopping.Register(() => work.CancelAfter(TimeSpan.FromSeconds(server.Value.ShutdownTimeoutSeconds)));
        JobState ended;
        try
        {
            var (result, streamed) = await RunAsync(job, loaded, connected, state, running, r => running = r, () => cancelledByClient, stopping, work.Token);
            ended = state with { Status = JobState.Done, Result = result, Streamed = streamed };
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested && !cancelledByClient && DateTimeOffset.UtcNow < job.Deadline)
        {
            await done.CancelAsync();
            await watchers;
            await JobBus.TryWriteAsync(connected, state with { Status = JobState.Queued }, running, CancellationToken.None);
            await message.NakAsync(cancellationToken: CancellationToken.None);
            logger.LogInformation("Job {Job} handed back on shutdown", job.Id);
            return;
        }
        catch (OperationCanceledException)
        {
            ended = cancelledByClient
                ? state.Fail(StatusCodes.Status499ClientClosedRequest, "Cancelled", "The job was cancelled, by DELETE or by its client leaving.")
                : state.Fail(StatusCodes.Status504GatewayTimeout, "Timed out", "The job ran past its deadline (Server:RequestTimeoutSeconds).");
        }
        catch (MirageException e)
        {
            var (title, detail) = Scheduling.InputProblem(e);
            ended = state.Fail(StatusCodes.Status400BadRequest, title, detail);
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            ended = state.Fail(StatusCodes.Status400BadRequest, "Invalid request", e.Message);
        }
        await done.CancelAsync();
        await watchers;
        await EndAsync(connected, message, ended with { Worker = WorkerRegistry.WorkerId });
    }

    // The job's work by its kind: a citation's body, a chat completion's, or (streamed) null with its chunks sent.
    private async Task<(JsonObject? Result, bool Streamed)> RunAsync(JobMessage job, LoadedModel loaded, JobBus.Connected connected, JobState state, ulong running, Action<ulong> revised,
        Func<bool> cancelledByClient, CancellationToken stopping, CancellationToken cancellationToken)
    {
        switch (job.Kind)
        {
            case JobMessage.Citation:
                var request = JsonSerializer.Deserialize<CitationsRequest>(job.Request, ApiRequests.Json)!;
                var result = await loaded.Engine.CiteAsync(request.ToEngineRequest(request.EngineOptions(server.Value)), cancellationToken);
                return (CitationsEndpoint.ToJson(result), false);
            case JobMessage.Flow:
                var flow = JsonSerializer.Deserialize<FlowRequest>(job.Request, ApiRequests.Json)!;
                var routes = await FlowEndpoint.Trace(loaded, flow, flow.AsCitation().EngineOptions(server.Value), cancellationToken);
                return (JsonSerializer.SerializeToNode(routes, MirageJson.Options)!.AsObject(), false);
            case JobMessage.Chat:
                var chat = JsonSerializer.Deserialize<ChatCompletionRequest>(job.Request, ApiRequests.Json)!;
                var prepared = ChatCompletionsEndpoint.CreateJob(chat, loaded, server.Value, cancellationToken);
                if (!chat.Stream)
                    return (await ChatCompletionsEndpoint.CompleteAsync(loaded, prepared, telemetry, cancellationToken), false);
                long sequence = 0;
                async Task Publish(string data, CancellationToken token)
                {
                    // Marked streamed before the first chunk leaves, so a redelivery never sends a second answer.
                    if (sequence == 0)
                    {
                        running = await JobBus.TryWriteAsync(connected, state with { Status = JobState.Running, Worker = WorkerRegistry.WorkerId, Streamed = true }, running, token)
                            ?? throw new OperationCanceledException("The job ended before its answer started.");
                        revised(running);
                    }
                    var headers = new NatsHeaders { [JobBus.SequenceHeader] = (++sequence).ToString(System.Globalization.CultureInfo.InvariantCulture) };
                    await connected.Connection.PublishAsync(JobBus.StreamSubject(job.Id), Encoding.UTF8.GetBytes(data), headers: headers, cancellationToken: token);
                }
                await ChatCompletionsEndpoint.StreamAsync(loaded, prepared, telemetry, Publish, () => stopping.IsCancellationRequested, cancelledByClient, cancellationToken);
                return (null, true);
            default:
                throw new JsonException($"Unknown job kind '{job.Kind}'.");
        }
    }

    // The end is stored before the ack, so a worker that dies between the two leaves a job the next delivery finds ended.
    // An end already there (a cancel's) stands; a write that lost to another reads again, so a stale read never drops a job.
    private static async Task EndAsync(JobBus.Connected connected, INatsJSMsg<byte[]> message, JobState ended)
    {
        int size = ended.ToBytes().Length;
        if (size > JobBus.MaxMessageBytes(connected))
        {
            ended = (ended with { Result = null }).Fail(StatusCodes.Status500InternalServerError, "Result too large",
                $"The result is {size:N0} bytes; the queue's server stores at most {JobBus.MaxMessageBytes(connected):N0} (NATS max_payload). Send fewer or shorter passages, or raise max_payload.");
        }
        await JobBus.ChangeAsync(connected, ended.Id, s => s.Ended ? null : ended, CancellationToken.None);
        await message.AckAsync(cancellationToken: CancellationToken.None);
    }

    private async Task ReportProgressAsync(INatsJSMsg<byte[]> message, CancellationToken done)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(nats.Value.AckWaitSeconds / 3));
        try
        {
            while (await timer.WaitForNextTickAsync(done))
                await message.AckProgressAsync(cancellationToken: done);
        }
        catch (OperationCanceledException)
        {
        }
        catch (NatsException e)
        {
            logger.LogWarning("Reporting progress on a job failed: {Reason}", nats.Value.Redact(e.Message));
        }
    }

    private static async Task WatchCancelAsync(INatsConnection connection, string id, Action cancel, CancellationToken done)
    {
        try
        {
            await foreach (var _ in connection.SubscribeAsync<byte[]>(JobBus.CancelSubject(id), cancellationToken: done))
            {
                cancel();
                return;
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
