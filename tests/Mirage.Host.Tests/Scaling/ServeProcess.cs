using System.Diagnostics;
using System.Text;
using Mirage.Tests;

namespace Mirage.Host.Tests.Scaling;

/// <summary>
/// A real <c>mirage serve --role worker</c> (on the embedded reader) or <c>--role api</c> process,
/// ready once its <c>/health</c> says the model is loaded (a worker) and NATS is connected. It can
/// be frozen (SIGSTOP: alive but silent, as a hung machine), thawed, stopped (SIGTERM) or killed
/// (SIGKILL).
/// </summary>
internal sealed class ServeProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServeProcess(Process process, Uri address)
    {
        _process = process;
        Address = address;
    }

    /// <summary>Where its HTTP listens.</summary>
    public Uri Address { get; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>What the process logged, for a failing test's message.</summary>
    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    public static Task<ServeProcess> StartWorkerAsync(string natsUrl, params string[] settings) =>
        StartAsync(["serve", "--role", "worker", "--nats", natsUrl, "--model", SharedAssets.EmbeddedReader, .. settings]);

    public static Task<ServeProcess> StartApiAsync(string natsUrl, params string[] settings) =>
        StartAsync(["serve", "--role", "api", "--nats", natsUrl, .. settings]);

    /// <summary>An api that may never become ready (bad credentials, say): started, not waited for.</summary>
    public static Task<ServeProcess> LaunchApiAsync(string natsUrl, params string[] settings) =>
        StartAsync(["serve", "--role", "api", "--nats", natsUrl, .. settings], waitUntilReady: false);

    /// <summary>Waits until the process has logged <paramref name="text"/>.</summary>
    public async Task WaitForOutputAsync(string text)
    {
        for (int i = 0; i < 600 && !Output.Contains(text, StringComparison.Ordinal); i++)
            await Task.Delay(50, TestContext.Current.CancellationToken);
        Assert.Contains(text, Output, StringComparison.Ordinal);
    }

    private static async Task<ServeProcess> StartAsync(string[] arguments, bool waitUntilReady = true)
    {
        int port = FreePort.Next();
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "mirage")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in (string[])[.. arguments, "--urls", $"http://127.0.0.1:{port}"])
            start.ArgumentList.Add(argument);
        var started = new ServeProcess(Process.Start(start)!, new Uri($"http://127.0.0.1:{port}"));
        started._process.OutputDataReceived += (_, e) => started.Append(e.Data);
        started._process.ErrorDataReceived += (_, e) => started.Append(e.Data);
        started._process.BeginOutputReadLine();
        started._process.BeginErrorReadLine();
        if (!waitUntilReady)
            return started;
        try
        {
            await started.WaitUntilReadyAsync();
            return started;
        }
        catch
        {
            started.Dispose();
            throw;
        }
    }

    private async Task WaitUntilReadyAsync()
    {
        using var http = new HttpClient { BaseAddress = Address };
        // Generous: a loaded CI machine starting several processes at once loads the model slowly.
        for (int i = 0; i < 2400; i++)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"mirage serve exited ({_process.ExitCode}):\n{Output}");
            try
            {
                if ((await http.GetAsync("/health", TestContext.Current.CancellationToken)).IsSuccessStatusCode)
                    return;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        throw new TimeoutException($"mirage serve did not become ready:\n{Output}");
    }

    public void Freeze() => Signal("STOP");

    public void Thaw() => Signal("CONT");

    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>SIGTERM, as a redeploy stops a process, then waits for it to exit; its exit code.</summary>
    public async Task<int> StopAsync()
    {
        Signal("TERM");
        await _process.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        return _process.ExitCode;
    }

    private void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Thaw();
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        _process.Dispose();
    }
}
