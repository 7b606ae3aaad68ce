using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Mirage.Benchmarks;

/// <summary>
/// The api and worker roles against one process: the queue path's cost per request (one client,
/// so latency is all overhead plus the same model work), and throughput with 1, 2 and 3 worker
/// processes under N clients. Starts its own nats-server (JetStream, a temporary store) and worker
/// processes on the embedded reader. On a 2-core machine the workers share two cores, so more
/// workers cannot add compute; the rows show what the queue costs, not how far it scales.
/// </summary>
internal static class ScaleOutBenchmark
{
    public static async Task RunAsync(int clients, TimeSpan duration)
    {
        var store = Directory.CreateTempSubdirectory("mirage-nats-");
        int port = FreePort();
        using var nats = Process.Start(new ProcessStartInfo("nats-server", ["-js", "-a", "127.0.0.1", "-p", $"{port}", "-sd", store.FullName]) { RedirectStandardError = true, RedirectStandardOutput = true })
            ?? throw new InvalidOperationException("nats-server did not start (apt-get install nats-server).");
        var workers = new List<Process>();
        try
        {
            string url = $"nats://127.0.0.1:{port}";
            Console.WriteLine($"CPU: {ConsumerBenchmark.CpuName()}, {Environment.ProcessorCount} cores; the embedded reader; {clients} clients for {duration.TotalSeconds:0} s per row.");
            Console.WriteLine();
            Console.WriteLine("| path | requests | p50 ms | p99 ms |");
            Console.WriteLine("|---|---:|---:|---:|");
            await using (var single = await LoadBenchmark.StartAsync([]))
            {
                using var http = LoadBenchmark.Client(single);
                await LoadBenchmark.DriveAsync(http, 1, TimeSpan.FromSeconds(3));
                Row("one process (--role all)", await LoadBenchmark.DriveAsync(http, 1, duration));
            }
            await using var api = await LoadBenchmark.StartAsync(["--Server:Role=api", $"--Nats:Url={url}"]);
            using var client = LoadBenchmark.Client(api);
            var rows = new List<(int Workers, LoadBenchmark.Outcome Outcome)>();
            for (int n = 1; n <= 3; n++)
            {
                workers.Add(await StartWorkerAsync(url));
                // One heartbeat's time more, so the api has seen the new worker too.
                await Task.Delay(TimeSpan.FromSeconds(1));
                await LoadBenchmark.DriveAsync(client, 1, TimeSpan.FromSeconds(3));
                if (n == 1)
                    Row("api + 1 worker (NATS)", await LoadBenchmark.DriveAsync(client, 1, duration));
                rows.Add((n, await LoadBenchmark.DriveAsync(client, clients, duration)));
            }
            Console.WriteLine();
            Console.WriteLine($"| workers | requests/s | p50 ms | p99 ms | 429 | errors | mismatched |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var (n, outcome) in rows)
                Console.WriteLine($"| {n} | {outcome.PerSecond:F1} | {outcome.Percentile(0.5):F0} | {outcome.Percentile(0.99):F0} | {outcome.Rejected} | {outcome.Failed} | {outcome.Mismatched} |");
        }
        finally
        {
            foreach (var worker in workers)
                worker.Kill();
            nats.Kill();
            store.Delete(recursive: true);
        }

        static void Row(string path, LoadBenchmark.Outcome outcome) =>
            Console.WriteLine($"| {path} | {outcome.Latencies.Count} | {outcome.Percentile(0.5):F1} | {outcome.Percentile(0.99):F1} |");
    }

    // A worker process on the embedded reader, once its /health says the model is loaded and NATS connected.
    private static async Task<Process> StartWorkerAsync(string url)
    {
        int port = FreePort();
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "mirage"), ["serve", "--role", "worker", "--nats", url, "--urls", $"http://127.0.0.1:{port}"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        while (true)
        {
            try
            {
                if ((await http.GetAsync("/health")).StatusCode == HttpStatusCode.OK)
                    return process;
            }
            catch (HttpRequestException) when (!process.HasExited)
            {
            }
            await Task.Delay(100);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
