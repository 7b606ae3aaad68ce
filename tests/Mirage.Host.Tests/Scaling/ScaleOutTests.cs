using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Mirage.Host.Server.Scaling;
using Mirage.Host.Tests.Server;
using Mirage.Tests;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Mirage.Host.Tests.Scaling;

/// <summary>
/// <c>serve --role api</c> and <c>--role worker</c> over a real nats-server on loopback: the same
/// answers as the single process, and nothing lost, crossed or doubled when a worker hangs or dies,
/// the queue server restarts, or the api is replaced.
/// </summary>
[Collection(nameof(ScaleOut))]
public sealed class ScaleOutTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    // Different answers to the same question, so a result given to the wrong request shows.
    private static readonly string[] Answers =
    [
        "Lousdrur Rourti works for Cimgun Labs.",
        "Lousdrur Rourti was born in Grouscelford.",
        "Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grouscelford.",
        "Brensein Rourti works for Fervir Partners.",
        "Caszais Rourti works for Dreinkai Systems.",
        "Caszais Rourti was born in Grekbrothholm.",
    ];

    private static object Body(string answer, string? method = null, string? model = null) => new
    {
        question = RunningServer.Question,
        passages = RunningServer.Passages,
        answer,
        options = method is null ? null : new { method },
        model,
    };

    // A job slow enough (occlusion: about a second on the reader) to catch its worker mid-job.
    private static object SlowBody(int i) => Body(Answers[i % Answers.Length], "occlusion");

    // A result without its timings, which differ from run to run.
    internal static string Comparable(JsonNode result)
    {
        var copy = result.DeepClone();
        Strip(copy);
        return copy.ToJsonString();

        static void Strip(JsonNode? node)
        {
            if (node is JsonObject obj)
            {
                foreach (var name in obj.Select(p => p.Key).Where(k => k.EndsWith("_ms", StringComparison.Ordinal)).ToList())
                    obj.Remove(name);
                foreach (var (_, child) in obj)
                    Strip(child);
            }
            else if (node is JsonArray array)
            {
                foreach (var child in array)
                    Strip(child);
            }
        }
    }

    // One process's answers, by body: to /v1/citations, and to /v1/flow for flowBodies.
    private static async Task<Dictionary<string, string>> ReferenceAsync(IEnumerable<object> bodies, IEnumerable<object>? flowBodies = null)
    {
        await using var single = await RunningServer.StartAsync();
        var reference = new Dictionary<string, string>();
        foreach (var (path, body) in bodies.Select(b => ("/v1/citations", b)).Concat((flowBodies ?? []).Select(b => ("/v1/flow", b))))
        {
            var key = System.Text.Json.JsonSerializer.Serialize(body);
            if (!reference.ContainsKey(key))
                reference[key] = await (await single.PostAsync(path, body)).Content.ReadAsStringAsync(Token);
        }
        return reference;
    }

    [Fact]
    public async Task ApiAndWorker_AnswerAsTheSingleProcessDoes()
    {
        var bodies = Answers.Select(a => Body(a)).ToList();
        var flow = new { question = RunningServer.Question, passages = RunningServer.Passages, answer = Answers[2], sentence = 1 };
        var reference = await ReferenceAsync(bodies, [flow]);
        await using var cluster = await ScaleOut.StartAsync(workers: 1);

        foreach (var body in bodies)
        {
            var response = await cluster.Api.PostAsync("/v1/citations", body);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var expected = reference[System.Text.Json.JsonSerializer.Serialize(body)];
            Assert.Equal(Comparable(JsonNode.Parse(expected)!), Comparable(JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!));
        }
        // Routes are traced on a worker, the same graph, shares and lens as one process traces.
        var routes = await cluster.Api.PostAsync("/v1/flow", flow);
        Assert.Equal(HttpStatusCode.OK, routes.StatusCode);
        Assert.Equal(reference[System.Text.Json.JsonSerializer.Serialize(flow)], await routes.Content.ReadAsStringAsync(Token));
        var html = await cluster.Api.PostAsync("/v1/citations?format=html", bodies[0]);
        Assert.Equal("text/html", html.Content.Headers.ContentType!.MediaType);
        Assert.Contains("Cimgun Labs", await html.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);

        // The same validation and statuses as one process; a model nobody serves is 404 naming the served one.
        var empty = await cluster.Api.PostAsync("/v1/citations", new { question = "q", passages = Array.Empty<object>(), answer = "a" });
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        var unknown = await cluster.Api.PostAsync("/v1/citations", Body(Answers[0], model: "llama-70b"));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("served: reader", await unknown.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
        var gradients = await cluster.Api.PostAsync("/v1/citations", Body(Answers[0], "integrated_gradients"));
        Assert.Equal(HttpStatusCode.OK, gradients.StatusCode);

        // Jobs: the same key gives the same job, its result the single process's, and a second api finds it by id.
        var id = await cluster.SubmitAsync(bodies[2], idempotencyKey: "order-17");
        Assert.Equal(id, await cluster.SubmitAsync(bodies[2], idempotencyKey: "order-17"));
        var job = await cluster.WaitAsync(id);
        Assert.Equal("done", job["status"]!.GetValue<string>());
        Assert.Equal(Comparable(JsonNode.Parse(reference[System.Text.Json.JsonSerializer.Serialize(bodies[2])])!), Comparable(job["result"]!));
        await cluster.ReplaceApiAsync();
        Assert.Equal(job.ToJsonString(), JsonNode.Parse(await cluster.Api.Http.GetStringAsync($"/v1/citations/jobs/{id}", Token))!.ToJsonString());
        Assert.Equal(HttpStatusCode.NotFound, (await cluster.Api.Http.GetAsync("/v1/citations/jobs/nosuchjob", Token)).StatusCode);
    }

    [Fact]
    public async Task AHungWorkersJob_GoesToAnotherWorker_AndEndsOnce_WithEveryOtherJobAnsweredOnce()
    {
        var bodies = Enumerable.Range(0, 12).Select(i => i == 0 ? SlowBody(0) : Body(Answers[i % Answers.Length])).ToList();
        var reference = await ReferenceAsync(bodies);
        await using var cluster = await ScaleOut.StartAsync(workers: 2, workerSettings: ["--Nats:AckWaitSeconds=2"]);

        var slow = await cluster.SubmitAsync(bodies[0]);
        var hung = await cluster.WhenRunningAsync(slow);
        hung.Freeze();
        var others = new List<string>();
        foreach (var body in bodies.Skip(1))
            others.Add(await cluster.SubmitAsync(body));

        var job = await cluster.WaitAsync(slow);
        Assert.Equal("done", job["status"]!.GetValue<string>());
        var finisher = (await cluster.StateAsync(slow))!.Worker!;
        Assert.DoesNotContain($"-{hung.ProcessId}-", finisher, StringComparison.Ordinal);

        // The hung worker comes back and finishes too late: the job keeps the one end it had.
        hung.Thaw();
        for (int i = 0; i < others.Count; i++)
        {
            var other = await cluster.WaitAsync(others[i]);
            Assert.Equal("done", other["status"]!.GetValue<string>());
            Assert.Equal(Comparable(JsonNode.Parse(reference[System.Text.Json.JsonSerializer.Serialize(bodies[i + 1])])!), Comparable(other["result"]!));
        }
        await Task.Delay(TimeSpan.FromSeconds(2), Token);
        var ended = (await cluster.StateAsync(slow))!;
        Assert.Equal(finisher, ended.Worker);
        Assert.Equal(Comparable(JsonNode.Parse(reference[System.Text.Json.JsonSerializer.Serialize(bodies[0])])!), Comparable(ended.Result!));
    }

    [Fact]
    public async Task AJobPastItsAttempts_FailsNamingTheSetting_AndTheOthersSucceed()
    {
        await using var cluster = await ScaleOut.StartAsync(workers: 3, workerSettings: ["--Nats:AckWaitSeconds=2", "--Nats:MaxAttempts=2"]);
        var poisoned = await cluster.SubmitAsync(SlowBody(1));
        // The job takes its worker down, each time it runs.
        var first = await cluster.WhenRunningAsync(poisoned);
        first.Kill();
        ServeProcess second;
        do
        {
            second = await cluster.WhenRunningAsync(poisoned);
        }
        while (second == first);
        second.Kill();

        var failed = await cluster.WaitAsync(poisoned);
        Assert.Equal("failed", failed["status"]!.GetValue<string>());
        Assert.Equal(500, failed["error"]!["status"]!.GetValue<int>());
        Assert.Contains("Nats:MaxAttempts", failed["error"]!["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        foreach (var answer in Answers)
            Assert.Equal("done", (await cluster.WaitAsync(await cluster.SubmitAsync(Body(answer))))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task AWorkerJetStreamWillNotGiveItsConsumer_KeepsAsking_AndTakesJobsOnceItCan()
    {
        // A consumer of the worker's name that cannot be updated to the worker's settings makes every
        // request for it fail, as a request meeting a leader election does (there it goes unanswered).
        using var nats = await NatsServerProcess.StartAsync();
        await using var connection = new NatsConnection(NatsOpts.Default with { Url = nats.Url });
        var js = new NatsJSContext(connection);
        const string stream = "MIRAGE_JOBS";
        await js.CreateStreamAsync(new StreamConfig(stream, ["mirage.jobs.>"]) { Retention = StreamConfigRetention.Workqueue }, Token);
        var name = $"workers-{JobBus.ModelKey("reader")}";
        await js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig(name)
        {
            DurableName = name,
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            DeliverSubject = "elsewhere", // a push consumer, which a pull consumer's settings cannot update
        }, Token);

        using var worker = await ServeProcess.StartWorkerAsync(nats.Url);
        await worker.WaitForOutputAsync("The jobs consumer is not ready (try 2)");
        Assert.False(worker.HasExited, worker.Output);

        await js.DeleteConsumerAsync(stream, name, Token);
        await worker.WaitForOutputAsync("takes jobs for reader");
        await using var api = await RunningServer.StartAsync(["--Server:Role=api", $"--Nats:Url={nats.Url}"]);
        var cited = await api.PostAsync("/v1/citations", Body(Answers[0]));
        Assert.True(cited.StatusCode == HttpStatusCode.OK, await cited.Content.ReadAsStringAsync(Token) + worker.Output);
    }

    [Fact]
    public async Task AJobNoDeliveryCouldEnd_IsDeadLetteredByTheApi_AndLeavesTheQueue()
    {
        // A worker that may take jobs but not write their state: no delivery of a job, its last
        // included, can record anything, so only JetStream's max-deliveries advisory tells of it.
        using var config = new TempDirectory();
        File.WriteAllText(config.File("nats.conf"), """
            authorization {
              users = [
                { user: "api", password: "api-secret" }
                { user: "mute", password: "mute-secret", permissions: { publish: { deny: ["$KV.mirage-jobs.>"] } } }
              ]
            }
            """);
        using var nats = await NatsServerProcess.StartAsync("-c", config.File("nats.conf"));
        using var worker = await ServeProcess.StartWorkerAsync(nats.Url, "--Nats:User=mute", "--Nats:Password=mute-secret", "--Nats:AckWaitSeconds=2", "--Nats:MaxAttempts=1");
        await using var api = await RunningServer.StartAsync(["--Server:Role=api", $"--Nats:Url={nats.Url}", "--Nats:User=api", "--Nats:Password=api-secret"]);
        var until = DateTime.UtcNow.AddSeconds(90);
        HttpResponseMessage submitted;
        string text;
        do
        {
            // 503 until the api has seen the worker's first heartbeat.
            submitted = await api.PostAsync("/v1/citations/jobs", Body(Answers[0]));
            text = await submitted.Content.ReadAsStringAsync(Token);
            Assert.True(DateTime.UtcNow < until, text);
            await Task.Delay(100, Token);
        }
        while (submitted.StatusCode == HttpStatusCode.ServiceUnavailable);
        Assert.True(submitted.StatusCode == HttpStatusCode.Accepted, text);
        var id = JsonNode.Parse(text)!["id"]!.GetValue<string>();

        JsonNode job;
        do
        {
            await Task.Delay(100, Token);
            job = JsonNode.Parse(await api.Http.GetStringAsync($"/v1/citations/jobs/{id}", Token))!;
            Assert.True(DateTime.UtcNow < until, $"Job {id} was never dead-lettered: {job.ToJsonString()}\nworker:\n{worker.Output}");
        }
        while (job["status"]!.GetValue<string>() is not "failed");
        Assert.Equal(500, job["error"]!["status"]!.GetValue<int>());
        Assert.Contains("Nats:MaxAttempts", job["error"]!["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        await using var connection = new NatsConnection(NatsOpts.Default with { Url = nats.Url, AuthOpts = new() { Username = "api", Password = "api-secret" } });
        var stream = await new NatsJSContext(connection).GetStreamAsync("MIRAGE_JOBS", cancellationToken: Token);
        Assert.Equal(0, stream.Info.State.Messages);
    }

    [Fact]
    public async Task OverTls_WithTheServersCertificateAuthority_JobsRun_AndWithoutItNothingConnects()
    {
        // A self-signed certificate for 127.0.0.1 serves as the servers' certificate and its own authority.
        using var files = new TempDirectory();
        using (var key = System.Security.Cryptography.RSA.Create(2048))
        {
            var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=127.0.0.1", key, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
            var names = new System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(names.Build());
            request.CertificateExtensions.Add(new System.Security.Cryptography.X509Certificates.X509BasicConstraintsExtension(true, false, 0, true));
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            File.WriteAllText(files.File("server.pem"), certificate.ExportCertificatePem());
            File.WriteAllText(files.File("server.key"), key.ExportPkcs8PrivateKeyPem());
        }
        using var nats = await NatsServerProcess.StartAsync("--tls", "--tlscert", files.File("server.pem"), "--tlskey", files.File("server.key"));
        var url = $"tls://127.0.0.1:{nats.Port}";
        string[] trusted = [$"--Nats:Url={url}", "--Nats:Tls=true", $"--Nats:TlsCaFile={files.File("server.pem")}"];
        using var worker = await ServeProcess.StartWorkerAsync(url, trusted);
        await using var api = await RunningServer.StartAsync(["--Server:Role=api", .. trusted]);
        var until = DateTime.UtcNow.AddSeconds(60);
        HttpResponseMessage answer;
        do
        {
            await Task.Delay(100, Token);
            answer = await api.PostAsync("/v1/citations", Body(Answers[0]));
            Assert.True(DateTime.UtcNow < until, $"{(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync(Token)}\nworker:\n{worker.Output}");
        }
        while (answer.StatusCode == HttpStatusCode.ServiceUnavailable);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.NotEmpty(JsonNode.Parse(await answer.Content.ReadAsStringAsync(Token))!["sentences"]!.AsArray());

        // An api that does not trust the certificate never connects, and says so on /health.
        await using var untrusting = await RunningServer.StartAsync(["--Server:Role=api", $"--Nats:Url={url}", "--Nats:Tls=true"]);
        await Task.Delay(TimeSpan.FromSeconds(3), Token);
        var health = await untrusting.Http.GetAsync("/health", Token);
        Assert.Contains("not connected to NATS", await health.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFullBacklog_Answers429_ACancelEndsTheRunningJob_AndATimeoutIs504()
    {
        await using var cluster = await ScaleOut.StartAsync(workers: 1, apiSettings: ["--Server:MaxQueueLength=2", "--Server:RetryAfterSeconds=3"]);
        var running = await cluster.SubmitAsync(SlowBody(0));
        await cluster.WhenRunningAsync(running);
        var waiting = await cluster.SubmitAsync(SlowBody(1));

        var full = await cluster.Api.PostAsync("/v1/citations/jobs", SlowBody(2));
        Assert.Equal(HttpStatusCode.TooManyRequests, full.StatusCode);
        Assert.Equal("3", full.Headers.RetryAfter!.ToString());

        var deleted = await cluster.Api.Http.DeleteAsync($"/v1/citations/jobs/{running}", Token);
        Assert.Equal(HttpStatusCode.Accepted, deleted.StatusCode);
        Assert.Equal(499, (await cluster.WaitAsync(running))["error"]!["status"]!.GetValue<int>());
        Assert.Equal("done", (await cluster.WaitAsync(waiting))["status"]!.GetValue<string>());
        // The cancelled job's worker stopped it and left its end alone.
        Assert.Equal(JobState.Failed, (await cluster.StateAsync(running))!.Status);

        // A client that leaves cancels its job on the worker.
        using (var leaving = new CancellationTokenSource())
        {
            var abandoned = cluster.Api.Http.PostAsync("/v1/citations", System.Net.Http.Json.JsonContent.Create(SlowBody(4)), leaving.Token);
            await cluster.AnyRunningAsync();
            await leaving.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
            var cancelled = await cluster.FindAsync(s => s.Error?["status"]?.GetValue<int>() == 499 && s.Id != running);
            Assert.Equal(JobState.Failed, cancelled.Status);
        }

        await cluster.ReplaceApiAsync("--Server:RequestTimeoutSeconds=0.3");
        var late = await cluster.Api.PostAsync("/v1/citations", SlowBody(3));
        Assert.Equal(HttpStatusCode.GatewayTimeout, late.StatusCode);
    }

    [Fact]
    public async Task TheQueueServerRestartedMidRun_LosesNoJob()
    {
        await using var cluster = await ScaleOut.StartAsync(workers: 2);
        var before = new List<string>();
        for (int i = 0; i < 8; i++)
            before.Add(await cluster.SubmitAsync(i % 4 == 0 ? SlowBody(i) : Body(Answers[i % Answers.Length])));

        await cluster.Nats.RestartAsync();

        var after = new List<string>();
        for (int i = 0; i < 8; i++)
            after.Add(await SubmitWhenBackAsync(cluster, Body(Answers[i % Answers.Length])));
        foreach (var id in before.Concat(after))
            Assert.Equal("done", (await cluster.WaitAsync(id))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task TheApiKilledWithJobsInFlight_LeavesThemRunning_AndASecondApiHasTheirResults()
    {
        await using var cluster = await ScaleOut.StartAsync(workers: 1);
        var ids = new List<string>();
        using (var first = await ServeProcess.StartApiAsync(cluster.Nats.Url))
        {
            using var http = new HttpClient { BaseAddress = first.Address };
            for (int i = 0; i < 4; i++)
            {
                var accepted = await http.PostAsync("/v1/citations/jobs", System.Net.Http.Json.JsonContent.Create(SlowBody(i)), Token);
                Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
                ids.Add(JsonNode.Parse(await accepted.Content.ReadAsStringAsync(Token))!["id"]!.GetValue<string>());
            }
            first.Kill();
        }
        foreach (var id in ids)
            Assert.Equal("done", (await cluster.WaitAsync(id))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task TheApiStopped_DrainsItsWaitingClients()
    {
        await using var cluster = await ScaleOut.StartAsync(workers: 1);
        // A drain window wide enough for a loaded test machine (the default 10 s ran out once in a full run).
        using var api = await ServeProcess.StartApiAsync(cluster.Nats.Url, "--Server:ShutdownTimeoutSeconds=60");
        using var http = new HttpClient { BaseAddress = api.Address };
        var waiting = http.PostAsync("/v1/citations", System.Net.Http.Json.JsonContent.Create(SlowBody(0)), Token);
        await cluster.AnyRunningAsync();
        var stopped = api.StopAsync();
        var response = await waiting;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"sentences\"", await response.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
        Assert.Equal(0, await stopped);
    }

    [Fact]
    public async Task NatsCredentials_ReachTheServer_AndNeverTheLogs()
    {
        using var nats = await NatsServerProcess.StartAsync("--user", "mirage", "--pass", "s3cret-pass");
        using var worker = await ServeProcess.StartWorkerAsync(nats.Url, "--Nats:User=mirage", "--Nats:Password=s3cret-pass");
        using var refused = await ServeProcess.LaunchApiAsync(nats.Url.Replace("nats://", "nats://mirage:wrong-s3cret@", StringComparison.Ordinal));
        await using var api = await RunningServer.StartAsync("--Server:Role=api", $"--Nats:Url={nats.Url}", "--Nats:User=mirage", "--Nats:Password=s3cret-pass");
        for (int i = 0; i < 200 && !(await api.Http.GetStringAsync("/v1/models", Token)).Contains("reader", StringComparison.Ordinal); i++)
            await Task.Delay(50, Token);
        Assert.Equal(HttpStatusCode.OK, (await api.PostAsync("/v1/citations", Body(Answers[0]))).StatusCode);

        await refused.WaitForOutputAsync("not ready");
        Assert.Contains("nats://***@127.0.0.1", refused.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-s3cret", refused.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret-pass", worker.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AWorkerStoppedMidJob_HandsItBack_AndAnotherFinishesIt()
    {
        await using var cluster = await ScaleOut.StartAsync(workers: 2, workerSettings: ["--Server:ShutdownTimeoutSeconds=0"]);
        var id = await cluster.SubmitAsync(SlowBody(0));
        var leaving = await cluster.WhenRunningAsync(id);
        Assert.Equal(0, await leaving.StopAsync());
        Assert.Contains("handed back on shutdown", leaving.Output, StringComparison.Ordinal);

        Assert.Equal("done", (await cluster.WaitAsync(id))["status"]!.GetValue<string>());
        Assert.DoesNotContain($"-{leaving.ProcessId}-", (await cluster.StateAsync(id))!.Worker!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AThreeNodeClusterWithThreeReplicas_LosesANode_AndNoJob()
    {
        var nodes = await NatsServerProcess.StartClusterAsync(3);
        try
        {
            var urls = string.Join(",", nodes.Select(n => n.Url));
            string[] settings = [$"--Nats:Url={urls}", "--Nats:Replicas=3"];
            // The default ack wait: no worker dies here, and a slow write during an election must not look like one.
            using var worker = await ServeProcess.StartWorkerAsync(nodes[1].Url, settings);
            var logs = new LogSink();
            await using var api = await RunningServer.StartAsync(builder => builder.Logging.AddProvider(logs), ["--Server:Role=api", .. settings]);
            string Logs() => $"\napi:\n{logs.Text}\nworker:\n{worker.Output}";
            async Task<string> Submit(object body)
            {
                // A client retries a 503 while the cluster elects new leaders.
                var until = DateTime.UtcNow.AddSeconds(120);
                while (true)
                {
                    var response = await api.PostAsync("/v1/citations/jobs", body);
                    if (response.StatusCode == HttpStatusCode.Accepted)
                        return JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!["id"]!.GetValue<string>();
                    Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < until, $"{DateTime.UtcNow:HH:mm:ss.fff} {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Token)}{Logs()}");
                    await Task.Delay(100, Token);
                }
            }
            var ids = new List<string>();
            for (int i = 0; i < 10; i++)
                ids.Add(await Submit(i % 5 == 0 ? SlowBody(i) : Body(Answers[i % Answers.Length])));
            nodes[0].Kill();
            for (int i = 0; i < 10; i++)
                ids.Add(await Submit(Body(Answers[i % Answers.Length])));
            var deadline = DateTime.UtcNow.AddSeconds(120);
            foreach (var id in ids)
            {
                string last;
                do
                {
                    await Task.Delay(25, Token);
                    // A client retries a 503 while the cluster elects new leaders.
                    var response = await api.Http.GetAsync($"/v1/citations/jobs/{id}", Token);
                    last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Token)}";
                    Assert.True(DateTime.UtcNow < deadline, $"Job {id} did not end; last answer: {last}{Logs()}");
                }
                while (!last.StartsWith("200", StringComparison.Ordinal) || JsonNode.Parse(last[4..])!["status"]!.GetValue<string>() is "queued" or "running");
                Assert.Equal("done", JsonNode.Parse(last[4..])!["status"]!.GetValue<string>());
            }
        }
        finally
        {
            nodes.ForEach(n => n.Dispose());
        }
    }

    [Fact]
    public async Task TheApisQueueDepth_CountsTheJobsInTheStream_UntilTheirWorkerEndsThem()
    {
        await using var cluster = await ScaleOut.StartAsync(workers: 1, apiSettings: ["--Nats:HeartbeatSeconds=1"]);
        var depth = cluster.Api.App.Services.GetRequiredService<QueueDepth>();
        async Task Reaches(long jobs, int seconds)
        {
            for (var until = DateTime.UtcNow.AddSeconds(seconds); depth.Depth != jobs && DateTime.UtcNow < until;)
                await Task.Delay(100, Token);
            Assert.Equal(jobs, depth.Depth);
        }

        // A hung worker leaves the jobs in the stream; they count until it wakes and ends them.
        cluster.Workers[0].Freeze();
        var ids = new List<string>();
        for (int i = 0; i < 3; i++)
            ids.Add(await cluster.SubmitAsync(Body(Answers[i])));
        await Reaches(3, 10);
        cluster.Workers[0].Thaw();
        foreach (var id in ids)
            Assert.Equal("done", (await cluster.WaitAsync(id))["status"]!.GetValue<string>());
        await Reaches(0, 10);
    }

    [Fact]
    public async Task WhatNatsCannotCarry_IsRefusedNamingMaxPayload()
    {
        using var config = new Mirage.Tests.TempDirectory();
        File.WriteAllText(config.File("nats.conf"), "max_payload: 8192\n");
        await using var cluster = await ScaleOut.StartAsync(workers: 1, natsArguments: ["-c", config.File("nats.conf")]);

        // A request past the server's limit is a 413 before it is queued.
        var passages = Enumerable.Range(0, 8).Select(i => new { id = $"{i}", text = string.Concat(Enumerable.Repeat($"Passage {i} says little. ", 40)) }).ToArray();
        var big = await cluster.Api.PostAsync("/v1/citations", new { question = RunningServer.Question, passages, answer = Answers[0] });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        Assert.Contains("max_payload", await big.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);

        // A request under it whose result is over it fails naming the limit, at once, not after every retry.
        var job = await cluster.WaitAsync(await cluster.SubmitAsync(Body(Answers[2])));
        Assert.Equal("failed", job["status"]!.GetValue<string>());
        Assert.Equal("Result too large", job["error"]!["title"]!.GetValue<string>());
        Assert.Contains("max_payload", job["error"]!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    // While the api reconnects, a submit may meet 503; a client retries.
    private static async Task<string> SubmitWhenBackAsync(ScaleOut cluster, object body)
    {
        for (int attempt = 0; ; attempt++)
        {
            var response = await cluster.Api.PostAsync("/v1/citations/jobs", body);
            if (response.StatusCode == HttpStatusCode.Accepted)
                return JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!["id"]!.GetValue<string>();
            Assert.True(attempt < 100 && response.StatusCode == HttpStatusCode.ServiceUnavailable, await response.Content.ReadAsStringAsync(Token));
            await Task.Delay(100, Token);
        }
    }
}
