using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Mirage.Eval.Data;
using Mirage.Host.Server;

namespace Mirage.Benchmarks;

/// <summary>
/// Load test of <c>mirage serve</c>: the real server on loopback with the embedded reader, N clients
/// posting distinct citation requests for a fixed time. Reports throughput, latency percentiles,
/// 429s, errors, and whether any answer came back for another request (each response is checked
/// against its own request's answer and passages).
/// </summary>
internal static class LoadBenchmark
{
    /// <summary>What N clients saw: answers with their latencies (seconds, sorted), 429s, errors and answers to other requests.</summary>
    public sealed record Outcome(double Seconds, List<double> Latencies, int Rejected, int Failed, int Mismatched)
    {
        public double PerSecond => Latencies.Count / Seconds;

        public double Percentile(double p) => Latencies.Count == 0 ? double.NaN : Latencies[Math.Min(Latencies.Count - 1, (int)(p * Latencies.Count))] * 1000;
    }

    public static async Task RunAsync(int clients, TimeSpan duration, string? model, int queueLength, int batchSize)
    {
        string[] args = [$"--Server:MaxQueueLength={queueLength}", $"--Server:BatchSize={batchSize}", .. model is null ? Array.Empty<string>() : [$"--Server:ModelPath={model}"]];
        await using var app = await StartAsync(args);
        using var http = Client(app);
        var outcome = await DriveAsync(http, clients, duration);
        Console.WriteLine($"| clients | batch | seconds | answered | requests/s | p50 ms | p95 ms | p99 ms | 429 | errors | mismatched |");
        Console.WriteLine($"|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        Console.WriteLine($"| {clients} | {batchSize} | {outcome.Seconds:F0} | {outcome.Latencies.Count} | {outcome.PerSecond:F1} | {outcome.Percentile(0.50):F0} | {outcome.Percentile(0.95):F0} | {outcome.Percentile(0.99):F0} | {outcome.Rejected} | {outcome.Failed} | {outcome.Mismatched} |");
        await app.StopAsync();
    }

    /// <summary>A started <c>mirage serve</c> in this process on a free loopback port, ready (its <c>/health</c> answers 200).</summary>
    public static async Task<WebApplication> StartAsync(string[] settings)
    {
        var app = MirageServer.Build(["--urls=http://127.0.0.1:0", .. settings], builder => builder.Logging.ClearProviders());
        await app.StartAsync();
        using var http = Client(app);
        while ((await http.GetAsync("/health")).StatusCode != HttpStatusCode.OK)
            await Task.Delay(100);
        return app;
    }

    public static HttpClient Client(WebApplication app) => new()
    {
        BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()),
        Timeout = TimeSpan.FromMinutes(5),
    };

    /// <summary><paramref name="clients"/> clients posting distinct held-out citation requests for <paramref name="duration"/>.</summary>
    public static async Task<Outcome> DriveAsync(HttpClient http, int clients, TimeSpan duration)
    {
        var items = new ReaderDataGenerator(7, DataSplit.Test).Generate(400).ToList();
        var latencies = new List<double>();
        int rejected = 0, failed = 0, mismatched = 0, next = 0;
        var clock = Stopwatch.StartNew();
        async Task Client()
        {
            while (clock.Elapsed < duration)
            {
                var item = items[Interlocked.Increment(ref next) % items.Count];
                var body = new { question = item.Question, passages = item.Docs.Select((d, i) => new { id = $"{item.Id}/{i}", title = d.Title, text = d.Text }), answer = item.Output };
                var started = Stopwatch.GetTimestamp();
                using var response = await http.PostAsJsonAsync("/v1/citations", body);
                var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    Interlocked.Increment(ref rejected);
                    await Task.Delay(TimeSpan.FromSeconds(response.Headers.RetryAfter?.Delta?.TotalSeconds ?? 1) / 10);
                    continue;
                }
                if (!response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref failed);
                    continue;
                }
                var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
                bool own = json["answer"]!.GetValue<string>() == item.Output
                    && json["passages"]!.AsArray().All(p => p!["id"]!.GetValue<string>().StartsWith(item.Id + "/", StringComparison.Ordinal));
                if (!own)
                    Interlocked.Increment(ref mismatched);
                lock (latencies)
                    latencies.Add(seconds);
            }
        }
        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(Client)));
        latencies.Sort();
        return new Outcome(clock.Elapsed.TotalSeconds, latencies, rejected, failed, mismatched);
    }
}
