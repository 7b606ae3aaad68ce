using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// The api's dead-letter handling. A job's last delivery normally records that it ran out of
/// attempts; when even that delivery cannot (its worker died too, or could not reach the job
/// bucket), JetStream stops delivering the job and announces it on its max-deliveries advisory.
/// The api then ends the job failed, naming the reason, and deletes it from the work queue, where it
/// would otherwise hold a place forever. Every api hears the advisory; the first end stands.
/// Advisories are not stored: one sent while no api is connected is missed, and that job keeps its
/// last state until it expires (docs/scaling.md).
/// </summary>
internal sealed class DeadLetters(JobBus bus, IOptions<NatsOptions> nats, ILogger<DeadLetters> logger) : BackgroundService
{
    /// <summary>The subject JetStream announces, for every consumer of the jobs stream, a job that ran out of deliveries.</summary>
    public static string AdvisorySubject(string stream) => $"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.*";

    private sealed record Advisory(
        [property: JsonPropertyName("stream_seq")] ulong StreamSequence,
        [property: JsonPropertyName("deliveries")] long Deliveries);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (await bus.ReadyOrStoppedAsync(stoppingToken) is not { } connected)
            return;
        // A core subscription: the client subscribes again by itself after a reconnect.
        await foreach (var message in connected.Connection.SubscribeAsync<byte[]>(AdvisorySubject(nats.Value.Stream), cancellationToken: stoppingToken))
        {
            try
            {
                if (message.Data is { Length: > 0 } data && JsonSerializer.Deserialize<Advisory>(data) is { StreamSequence: > 0 } advisory)
                    await EndAsync(connected, advisory, stoppingToken);
            }
            catch (Exception e) when (e is NatsException or TimeoutException or JsonException)
            {
                logger.LogWarning("A job that ran out of deliveries could not be ended: {Reason}", nats.Value.Redact(e.Message));
            }
        }
    }

    private async Task EndAsync(JobBus.Connected connected, Advisory advisory, CancellationToken cancellationToken)
    {
        var stream = await connected.JetStream.GetStreamAsync(nats.Value.Stream, cancellationToken: cancellationToken);
        StreamMsgGetResponse stored;
        try
        {
            stored = await stream.GetAsync(new StreamMsgGetRequest { Seq = advisory.StreamSequence }, cancellationToken);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return; // Another api got there first.
        }
        var job = JobMessage.FromBytes(stored.Message.Data.ToArray());
        var ended = await JobBus.ChangeAsync(connected, job.Id, s => s.Ended ? null : s.Fail(StatusCodes.Status500InternalServerError, "Failed",
            $"The job was delivered {advisory.Deliveries} times and no worker ended it (Nats:MaxAttempts); it is not tried again."), cancellationToken);
        try
        {
            await stream.DeleteMessageAsync(new StreamMsgDeleteRequest { Seq = advisory.StreamSequence }, cancellationToken);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
        }
        if (ended is not null)
            logger.LogWarning("Job {Job} ran out of deliveries ({Deliveries}); ended failed", job.Id, advisory.Deliveries);
    }
}
