using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Mirage.Host.Server.Scaling;
using Mirage.Host.Tests.Server;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;

namespace Mirage.Host.Tests.Scaling;

/// <summary>The scale-out tests start processes by the handful: one class at a time (beside the other tests), so a loaded machine still starts them in time.</summary>
[CollectionDefinition(nameof(ScaleOut))]
public sealed class ScaleOutCollection;

/// <summary>
/// One NATS server, an api (in this process) and worker processes, as a deployment runs them; with
/// the job bucket open to the test, to see which worker holds a job.
/// </summary>
internal sealed class ScaleOut : IAsyncDisposable
{
    private readonly NatsConnection _connection;

    private ScaleOut(NatsServerProcess nats, RunningServer api, List<ServeProcess> workers, NatsConnection connection)
    {
        Nats = nats;
        Api = api;
        Workers = workers;
        _connection = connection;
    }

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public NatsServerProcess Nats { get; }

    public RunningServer Api { get; private set; }

    public List<ServeProcess> Workers { get; }

    /// <summary>Starts NATS (with <paramref name="natsArguments"/>), <paramref name="workers"/> workers (with <paramref name="workerSettings"/>) and an api (with <paramref name="apiSettings"/>), ready when the api lists the reader.</summary>
    public static async Task<ScaleOut> StartAsync(int workers, string[]? workerSettings = null, string[]? apiSettings = null, string[]? natsArguments = null)
    {
        var nats = await NatsServerProcess.StartAsync(natsArguments ?? []);
        var starting = Enumerable.Range(0, workers).Select(_ => ServeProcess.StartWorkerAsync(nats.Url, workerSettings ?? [])).ToList();
        try
        {
            await Task.WhenAll(starting);
        }
        catch
        {
            // Nothing a failed start began outlives the test.
            foreach (var worker in starting.Where(t => t.IsCompletedSuccessfully))
                worker.Result.Dispose();
            nats.Dispose();
            throw;
        }
        var api = await RunningServer.StartAsync(["--Server:Role=api", $"--Nats:Url={nats.Url}", .. apiSettings ?? []]);
        var connection = new NatsConnection(NatsOpts.Default with { Url = nats.Url });
        var cluster = new ScaleOut(nats, api, [.. starting.Select(t => t.Result)], connection);
        try
        {
            if (workers > 0)
                await cluster.WaitForModelsAsync(["reader"]);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Replaces the api with a new one on the same NATS (the old one stopped, as a redeploy does).</summary>
    public async Task ReplaceApiAsync(params string[] apiSettings)
    {
        await Api.DisposeAsync();
        Api = await RunningServer.StartAsync(["--Server:Role=api", $"--Nats:Url={Nats.Url}", .. apiSettings]);
    }

    public async Task WaitForModelsAsync(string[] models)
    {
        for (int i = 0; i < 2400; i++)
        {
            var listed = JsonNode.Parse(await Api.Http.GetStringAsync("/v1/models", Token))!["data"]!.AsArray().Select(m => m!["id"]!.GetValue<string>());
            if (listed.SequenceEqual(models))
                return;
            await Task.Delay(50, Token);
        }
        throw new TimeoutException($"The api never listed {string.Join(", ", models)}.");
    }

    /// <summary>The job's state as the bucket holds it (with the worker that holds it), or null.</summary>
    public async Task<JobState?> StateAsync(string id)
    {
        var store = await new NatsKVContext(new NatsJSContext(_connection)).GetStoreAsync(JobBus.JobsBucket, Token);
        NatsResult<NatsKVEntry<byte[]>> entry;
        try
        {
            entry = await store.TryGetEntryAsync<byte[]>(id, cancellationToken: Token);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return null; // The bucket's leader has no such key (direct gets are off).
        }
        return entry.Success && entry.Value.Value is { Length: > 0 } bytes ? JobState.FromBytes(bytes) : null;
    }

    /// <summary>The worker process that is running job <paramref name="id"/>, once one is.</summary>
    public async Task<ServeProcess> WhenRunningAsync(string id)
    {
        for (int i = 0; i < 1000; i++)
        {
            if (await StateAsync(id) is { Status: JobState.Running, Worker: { } worker })
                return Workers.Single(w => worker.Contains($"-{w.ProcessId}-", StringComparison.Ordinal));
            await Task.Delay(10, Token);
        }
        throw new TimeoutException($"Job {id} never ran.");
    }

    /// <summary>The worker process running some job, once one is (for requests whose job id the client does not see).</summary>
    public async Task<ServeProcess> AnyRunningAsync()
    {
        var running = await FindAsync(s => s is { Status: JobState.Running, Worker: not null });
        return Workers.Single(w => running.Worker!.Contains($"-{w.ProcessId}-", StringComparison.Ordinal));
    }

    /// <summary>Writes a job's state over whatever the bucket holds, as a worker or an api would.</summary>
    public async Task WriteStateAsync(JobState state)
    {
        var store = await new NatsKVContext(new NatsJSContext(_connection)).GetStoreAsync(JobBus.JobsBucket, Token);
        await store.PutAsync(state.Id, state.ToBytes(), cancellationToken: Token);
    }

    /// <summary>The first job state in the bucket that <paramref name="match"/> accepts, once there is one.</summary>
    public async Task<JobState> FindAsync(Func<JobState, bool> match)
    {
        var store = await new NatsKVContext(new NatsJSContext(_connection)).GetStoreAsync(JobBus.JobsBucket, Token);
        for (int i = 0; i < 1000; i++)
        {
            await foreach (var entry in store.WatchAsync<byte[]>(opts: new() { IgnoreDeletes = true, OnNoData = _ => ValueTask.FromResult(true) }, cancellationToken: Token))
            {
                if (entry.Value is { Length: > 0 } bytes && JobState.FromBytes(bytes) is var state && match(state))
                    return state;
                if (entry.Delta == 0)
                    break;
            }
            await Task.Delay(10, Token);
        }
        throw new TimeoutException("No job in the bucket matched.");
    }

    public async Task<string> SubmitAsync(object body, string? idempotencyKey = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/citations/jobs") { Content = JsonContent.Create(body) };
        if (idempotencyKey is not null)
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        var response = await Api.Http.SendAsync(request, Token);
        var text = await response.Content.ReadAsStringAsync(Token);
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Accepted, text);
        return JsonNode.Parse(text)!["id"]!.GetValue<string>();
    }

    /// <summary>Polls the api until the job ends; its response body.</summary>
    public async Task<JsonNode> WaitAsync(string id, double seconds = 60)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < until)
        {
            // A client retries a 503: NATS may be electing a leader or reconnecting.
            var response = await Api.Http.GetAsync($"/v1/citations/jobs/{id}", Token);
            if (response.StatusCode != System.Net.HttpStatusCode.ServiceUnavailable)
            {
                var job = JsonNode.Parse(await response.EnsureSuccessStatusCode().Content.ReadAsStringAsync(Token))!;
                if (job["status"]!.GetValue<string>() is "done" or "failed")
                    return job;
            }
            await Task.Delay(25, Token);
        }
        throw new TimeoutException($"Job {id} did not end in {seconds} s. Workers said:\n{string.Join("\n---\n", Workers.Select(w => w.Output))}");
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync();
        await Api.DisposeAsync();
        Workers.ForEach(w => w.Dispose());
        Nats.Dispose();
    }
}
