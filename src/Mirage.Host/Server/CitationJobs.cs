using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Mirage.Core;
using Mirage.Core.Citations;

namespace Mirage.Host.Server;

/// <summary>
/// Asynchronous citation jobs: <c>POST /v1/citations/jobs</c> queues a citation and answers 202 with
/// its id at once; <c>GET /v1/citations/jobs/{id}</c> says whether it is queued, running, done (with
/// the result) or failed (with problem details); <c>DELETE</c> cancels it. An <c>Idempotency-Key</c>
/// returns the same job for the same key. Results are kept <see cref="ServerOptions.JobResultSeconds"/>.
/// The work goes through the same queue, limits and budget as <c>/v1/citations</c>.
/// </summary>
internal sealed class CitationJobs(WorkQueue queue, IOptions<ServerOptions> settings, IHostApplicationLifetime lifetime)
{
    private readonly ConcurrentDictionary<string, Job> _jobs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _byKey = new(StringComparer.Ordinal);

    private sealed class Job(string id, string? key, CancellationTokenSource cancel)
    {
        public string Id { get; } = id;
        public string? Key { get; } = key;
        public CancellationTokenSource Cancel { get; } = cancel;
        public volatile string Status = "queued";
        public JsonObject? Result;
        public JsonObject? Error;
        public DateTimeOffset Finished = DateTimeOffset.MaxValue;

        public JsonObject ToJson() => new()
        {
            ["id"] = Id,
            ["status"] = Status,
            ["result"] = Result?.DeepClone(),
            ["error"] = Error?.DeepClone(),
        };
    }

    public async Task<IResult> CreateAsync(HttpContext http, ModelHost host)
    {
        Evict();
        var options = settings.Value;
        var (key, invalid) = IdempotencyKey(http);
        if (invalid is not null)
            return invalid;
        if (key is not null && _byKey.TryGetValue(key, out var existing) && _jobs.TryGetValue(existing, out var same))
            return Accepted(same);
        var (prepared, error) = await CitationsEndpoint.PrepareAsync(http, host, options);
        if (error is not null)
            return error;
        var (loaded, request) = prepared!.Value;
        var cancel = CancellationTokenSource.CreateLinkedTokenSource(lifetime.ApplicationStopping);
        cancel.CancelAfter(TimeSpan.FromSeconds(options.RequestTimeoutSeconds));
        var job = new Job(Guid.NewGuid().ToString("N"), key, cancel);
        if (key is not null && !_byKey.TryAdd(key, job.Id) && _byKey.TryGetValue(key, out var raced) && _jobs.TryGetValue(raced, out var first))
        {
            cancel.Dispose();
            return Accepted(first);
        }
        var work = queue.TryEnqueue(c =>
        {
            job.Status = "running";
            return loaded.Engine.CiteAsync(request, c);
        }, cancel.Token);
        if (work is null)
        {
            if (key is not null)
                _byKey.TryRemove(key, out _);
            cancel.Dispose();
            return Scheduling.QueueFull(http, options);
        }
        _jobs[job.Id] = job;
        _ = work.ContinueWith(t => Finish(job, t), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return Accepted(job);
    }

    public IResult Get(string id) => _jobs.TryGetValue(id, out var job)
        ? Results.Content(job.ToJson().ToJsonString(), "application/json; charset=utf-8")
        : NotFound(id);

    public IResult Delete(string id)
    {
        if (!_jobs.TryGetValue(id, out var job))
            return NotFound(id);
        if (job.Status is "queued" or "running")
            job.Cancel.Cancel();
        return Results.Content(job.ToJson().ToJsonString(), "application/json; charset=utf-8", statusCode: StatusCodes.Status202Accepted);
    }

    private static IResult Accepted(Job job) => Accepted(job.Id, job.Status);

    /// <summary>The request's <c>Idempotency-Key</c> (null without one), or the 400 for one past 200 characters.</summary>
    internal static (string? Key, IResult? Error) IdempotencyKey(HttpContext http)
    {
        var key = http.Request.Headers["Idempotency-Key"].ToString() is { Length: > 0 } given ? given : null;
        return key is { Length: > 200 }
            ? (null, ApiRequests.Problem(StatusCodes.Status400BadRequest, "Invalid request", "The Idempotency-Key header is longer than 200 characters."))
            : (key, null);
    }

    /// <summary>202 with the job's id and status, and its <c>Location</c>.</summary>
    internal static IResult Accepted(string id, string status) => new WithLocation(
        Results.Content(new JsonObject { ["id"] = id, ["status"] = status }.ToJsonString(), "application/json; charset=utf-8", statusCode: StatusCodes.Status202Accepted),
        $"/v1/citations/jobs/{id}");

    /// <summary>404 for a job id nobody knows (or whose result expired).</summary>
    internal static IResult NotFound(string id) => ApiRequests.Problem(StatusCodes.Status404NotFound, "Not found", $"No citation job '{id}' (finished jobs are kept for Server:JobResultSeconds).");

    private static void Finish(Job job, Task<CitationResult> work)
    {
        if (work.IsCompletedSuccessfully)
        {
            job.Result = CitationsEndpoint.ToJson(work.Result);
            job.Status = "done";
        }
        else
        {
            const string Cancelled = "The job was cancelled, by DELETE, past Server:RequestTimeoutSeconds, or by shutdown.";
            var (status, title, detail) = work.Exception?.GetBaseException() switch
            {
                null or OperationCanceledException => (StatusCodes.Status499ClientClosedRequest, "Cancelled", Cancelled),
                MirageException e when Scheduling.InputProblem(e) is var (inputTitle, inputDetail) => (StatusCodes.Status400BadRequest, inputTitle, inputDetail),
                _ => (StatusCodes.Status500InternalServerError, "Failed", "The server failed while citing."),
            };
            job.Error = new JsonObject { ["status"] = status, ["title"] = title, ["detail"] = detail };
            job.Status = "failed";
        }
        job.Finished = DateTimeOffset.UtcNow;
        job.Cancel.Dispose();
    }

    // Finished jobs go once they are older than the configured time.
    private void Evict()
    {
        var before = DateTimeOffset.UtcNow - TimeSpan.FromSeconds(settings.Value.JobResultSeconds);
        foreach (var (id, job) in _jobs)
        {
            if (job.Finished < before && _jobs.TryRemove(id, out _) && job.Key is not null)
                _byKey.TryRemove(job.Key, out _);
        }
    }

    private sealed class WithLocation(IResult inner, string location) : IResult
    {
        public Task ExecuteAsync(HttpContext http)
        {
            http.Response.Headers.Location = location;
            return inner.ExecuteAsync(http);
        }
    }
}
