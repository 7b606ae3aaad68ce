using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using NATS.Client.Core;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// The api role's <c>/v1/chat/completions</c>. A non-streamed answer is a job like a citation. A
/// streamed one is relayed: the api subscribes to the job's stream subject before queueing it, and
/// writes each chunk its worker publishes as it arrives. Input the model refuses before the first
/// chunk is a plain error status, as in one process; once chunks have gone out, a failure, the
/// time limit, a lost chunk or a worker that died mid-answer ends the stream with an <c>error</c>
/// event and <c>[DONE]</c> (sent tokens cannot be taken back). A worker that died before any chunk
/// reached the client leaves nothing to take back: the answer starts again as a new job.
/// </summary>
internal sealed class RemoteChat(RemoteJobs jobs, IOptions<ServerOptions> settings, IHostApplicationLifetime lifetime)
{
    // How long the last chunks may trail the job's end (they travel apart from the job bucket).
    private static readonly TimeSpan StragglerWait = TimeSpan.FromSeconds(5);

    // How many jobs one streamed answer may start whose workers all die before a chunk comes through.
    private const int StreamStarts = 3;

    public async Task<IResult> HandleAsync(HttpContext http)
    {
        var (request, error) = await ApiRequests.ReadAsync<ChatCompletionRequest>(http.Request, http.RequestAborted);
        if (error is not null)
            return error;
        if (ChatCompletionsEndpoint.Validate(request!, settings.Value) is { } invalid)
            return invalid;
        var body = JsonSerializer.SerializeToElement(request, ApiRequests.Json);
        if (!request!.Stream)
        {
            var (state, failed) = await jobs.RunAsync(http, JobMessage.Chat, request.Model, body);
            return failed ?? (state!.Status == JobState.Done
                ? Results.Content(state.Result!.ToJsonString(), "application/json; charset=utf-8")
                : RemoteJobs.Problem(state.Error));
        }

        using var limit = jobs.LimitFor(http);
        var (connected, unreachable) = await jobs.ConnectAsync(http, limit.Token);
        if (unreachable is not null)
            return unreachable;
        for (int start = 1; ; start++)
        {
            var id = RemoteJobs.NewId();
            await using var chunks = await connected!.Connection.SubscribeCoreAsync<byte[]>(JobBus.StreamSubject(id), cancellationToken: limit.Token);
            // A round trip, so the server has the subscription before the worker can publish.
            await connected.Connection.PingAsync(limit.Token);
            var (queued, refused) = await jobs.SubmitAsync(http, connected, id, JobMessage.Chat, request.Model, body, limit.Token);
            if (refused is not null)
                return refused;
            var ended = jobs.WaitForEndAsync(connected, queued!.Id, limit.Token);
            bool started = false;
            try
            {
                if (await RelayAsync(http, chunks.Msgs, ended, () => started = true, limit.Token) is not { } failed)
                    return Results.Empty;
                // Nothing reached the client: a worker that died before its first chunk came through
                // leaves nothing to take back, so the answer starts again as a new job, as a
                // non-streamed answer would be finished by another worker.
                if (failed.Error?["detail"]?.GetValue<string>() != JobWorker.StoppedMidStream || start == StreamStarts)
                    return RemoteJobs.Problem(failed.Error);
            }
            catch (OperationCanceledException)
            {
                var answer = await jobs.AbandonAsync(http, connected, id);
                if (!started || http.RequestAborted.IsCancellationRequested)
                    return started ? Results.Empty : answer;
                if (lifetime.ApplicationStopping.IsCancellationRequested)
                    await EndWithErrorAsync(http, ChatCompletionsEndpoint.ShuttingDown, "server_error");
                else
                    await EndWithErrorAsync(http, ChatCompletionsEndpoint.TimedOut, "timeout");
                return Results.Empty;
            }
        }
    }

    // Writes chunks until [DONE]; null once the stream is written, or the job's failed state when it
    // failed before its first chunk (the client has seen nothing).
    private static async Task<JobState?> RelayAsync(HttpContext http, ChannelReader<NatsMsg<byte[]>> chunks, Task<JobState> ended, Action onStart, CancellationToken cancellationToken)
    {
        var send = ChatCompletionsEndpoint.HttpSink(http.Response);
        long expected = 1;
        bool started = false;
        DateTime? endedAt = null;
        while (true)
        {
            while (chunks.TryRead(out var chunk))
            {
                if (chunk.Headers?[JobBus.SequenceHeader].ToString() != expected.ToString(System.Globalization.CultureInfo.InvariantCulture))
                {
                    await EndWithErrorAsync(http, "Part of the answer was lost on its way from the worker; the answer above is incomplete.", "server_error", start: !started);
                    return null;
                }
                expected++;
                if (!started)
                {
                    ChatCompletionsEndpoint.StartEventStream(http.Response);
                    started = true;
                    onStart();
                }
                var data = Encoding.UTF8.GetString(chunk.Data ?? []);
                await send(data, cancellationToken);
                if (data == "[DONE]")
                    return null;
            }
            if (ended.IsCompleted)
            {
                var state = await ended;
                if (state.Status == JobState.Failed)
                {
                    if (!started)
                        return state;
                    await EndWithErrorAsync(http, state.Error?["detail"]?.GetValue<string>() ?? "The answer failed.", "server_error");
                    return null;
                }
                endedAt ??= DateTime.UtcNow;
                if (DateTime.UtcNow - endedAt > StragglerWait)
                {
                    await EndWithErrorAsync(http, "The end of the answer was lost on its way from the worker; the answer above is incomplete.", "server_error", start: !started);
                    return null;
                }
            }
            var more = chunks.WaitToReadAsync(cancellationToken).AsTask();
            await Task.WhenAny(more, ended.IsCompleted ? Task.Delay(StragglerWait, cancellationToken) : ended);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    private static async Task EndWithErrorAsync(HttpContext http, string message, string type, bool start = false)
    {
        if (start)
            ChatCompletionsEndpoint.StartEventStream(http.Response);
        using var last = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var send = ChatCompletionsEndpoint.HttpSink(http.Response);
        await send(ChatCompletionsEndpoint.ErrorEvent(message, type), last.Token);
        await send("[DONE]", last.Token);
    }
}
