using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// What the job bucket holds for one job: its status, and once it ends its result (the body
/// <c>/v1/citations</c> answers) or its error (problem details). The api writes it queued; a
/// worker moves it to running and to its end; every write names the revision it replaces, so one
/// job ends once, whichever writer (a worker, a redelivery, a cancel) gets there first.
/// <c>streamed</c> is set before a streamed answer's first chunk goes out, so a redelivered copy
/// fails instead of sending the answer again.
/// </summary>
internal sealed record JobState(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("result")] JsonObject? Result = null,
    [property: JsonPropertyName("error")] JsonObject? Error = null,
    [property: JsonPropertyName("worker")] string? Worker = null,
    [property: JsonPropertyName("streamed")] bool Streamed = false)
{
    public const string Queued = "queued", Running = "running", Done = "done", Failed = "failed";

    [JsonIgnore]
    public bool Ended => Status is Done or Failed;

    public JobState Fail(int status, string title, string detail) =>
        this with { Status = Failed, Error = new JsonObject { ["status"] = status, ["title"] = title, ["detail"] = detail } };

    /// <summary>The body <c>GET /v1/citations/jobs/{id}</c> answers (what the in-process jobs answer).</summary>
    public JsonObject ToResponse() => new()
    {
        ["id"] = Id,
        ["status"] = Status,
        ["result"] = Result?.DeepClone(),
        ["error"] = Error?.DeepClone(),
    };

    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this);

    public static JobState FromBytes(byte[] bytes) => JsonSerializer.Deserialize<JobState>(bytes) ?? throw new JsonException("A job state is JSON null.");
}

/// <summary>
/// A job on the work queue: a citation (<c>/v1/citations</c>'s body), a routes trace
/// (<c>/v1/flow</c>'s) or a chat completion (its body, streamed or not), as the client sent it, for
/// a model, until a deadline.
/// </summary>
internal sealed record JobMessage(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("request")] JsonElement Request,
    [property: JsonPropertyName("deadline")] DateTimeOffset Deadline)
{
    public const string Citation = "citation", Chat = "chat", Flow = "flow";

    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this);

    public static JobMessage FromBytes(byte[] bytes) => JsonSerializer.Deserialize<JobMessage>(bytes) ?? throw new JsonException("A job message is JSON null.");
}
