using System.Diagnostics;
using System.Net.Sockets;
using Mirage.Tests;

namespace Mirage.Host.Tests.Scaling;

/// <summary>
/// A real <c>nats-server</c> with JetStream on a free 127.0.0.1 port and a temporary file store,
/// killed on dispose. Skips the test where nats-server is not installed (CI installs it, and a
/// skip fails CI).
/// </summary>
internal sealed class NatsServerProcess : IDisposable
{
    private readonly TempDirectory _store = new();
    private readonly string[] _extra;
    private Process _process;

    private NatsServerProcess(int port, string[] extra)
    {
        Port = port;
        _extra = extra;
        _process = Launch();
    }

    public int Port { get; }

    public string Url => $"nats://127.0.0.1:{Port}";

    public static async Task<NatsServerProcess> StartAsync(params string[] extra)
    {
        var server = new NatsServerProcess(FreePort.Next(), extra);
        await server.WaitUntilReadyAsync();
        return server;
    }

    /// <summary>A cluster of <paramref name="nodes"/> JetStream servers routed to each other on loopback.</summary>
    public static async Task<List<NatsServerProcess>> StartClusterAsync(int nodes)
    {
        var routes = Enumerable.Range(0, nodes).Select(_ => FreePort.Next()).ToList();
        var servers = routes.Select((route, i) => new NatsServerProcess(FreePort.Next(),
        [
            "-n", $"node{i}", "--cluster_name", "mirage", "--cluster", $"nats://127.0.0.1:{route}",
            "--routes", string.Join(",", routes.Where(r => r != route).Select(r => $"nats://127.0.0.1:{r}")),
        ])).ToList();
        foreach (var server in servers)
            await server.WaitUntilReadyAsync();
        return servers;
    }

    /// <summary>Kills the server, as a crashed node.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    /// <summary>Kills the server (as a crash would) and starts it again on the same port and store.</summary>
    public async Task RestartAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync(TestContext.Current.CancellationToken);
        _process.Dispose();
        _process = Launch();
        await WaitUntilReadyAsync();
    }

    private static string Executable => new[] { "/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server" }.FirstOrDefault(File.Exists)
        ?? (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "nats-server")).FirstOrDefault(File.Exists)
        ?? Skip();

    private static string Skip()
    {
        Assert.Skip("nats-server is not installed (apt-get install nats-server); .ci/run installs it.");
        return "";
    }

    private Process Launch()
    {
        var start = new ProcessStartInfo(Executable) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in (string[])["-js", "-a", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-sd", _store.Path, .. _extra])
            start.ArgumentList.Add(argument);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    // Ready once it accepts a connection and greets with INFO.
    private async Task WaitUntilReadyAsync()
    {
        for (int i = 0; i < 100; i++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", Port, TestContext.Current.CancellationToken);
                using var reader = new StreamReader(client.GetStream());
                if ((await reader.ReadLineAsync(TestContext.Current.CancellationToken))?.StartsWith("INFO", StringComparison.Ordinal) == true)
                    return;
            }
            catch (SocketException)
            {
            }
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        throw new TimeoutException($"nats-server did not start on port {Port}.");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
            _process.Kill();
        _process.Dispose();
        _store.Dispose();
    }
}
