using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
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
    public static async Task RunAsync(int clients, TimeSpan duration, string? model, int queueLength, int batchSize)
    {
        string[] args = ["--urls=http://127.0.0.1:0", $"--Server:MaxQueueLength={queueLength}", $"--Server:BatchSize={batchSize}", .. model is null ? Array.Empty<string>() : [$"--Server:ModelPath={model}"]];
        await using var app = MirageServer.Build(args, builder => builder.Logging.ClearProviders());
        await app.StartAsync();
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        using var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(5) };
        while ((await http.GetAsync("/health")).StatusCode != HttpStatusCode.OK)
            await Task.Delay(100);

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
        var elapsed = clock.Elapsed.TotalSeconds;
        latencies.Sort();
        double Percentile(double p) => latencies.Count == 0 ? double.NaN : latencies[Math.Min(latencies.Count - 1, (int)(p * latencies.Count))] * 1000;
        Console.WriteLine($"| clients | batch | seconds | answered | requests/s | p50 ms | p95 ms | p99 ms | 429 | errors | mismatched |");
        Console.WriteLine($"|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        Console.WriteLine($"| {clients} | {batchSize} | {elapsed:F0} | {latencies.Count} | {latencies.Count / elapsed:F1} | {Percentile(0.50):F0} | {Percentile(0.95):F0} | {Percentile(0.99):F0} | {rejected} | {failed} | {mismatched} |");
        await app.StopAsync();
    }
}
