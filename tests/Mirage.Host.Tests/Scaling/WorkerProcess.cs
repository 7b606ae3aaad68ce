using System.Diagnostics;
using System.Text;
using Mirage.Tests;

namespace Mirage.Host.Tests.Scaling;

/// <summary>
/// A real <c>mirage serve --role worker</c> process on the embedded reader, ready once its
/// <c>/health</c> says the model is loaded and NATS connected. It can be frozen (SIGSTOP: alive but
/// silent, as a hung machine), thawed, or killed (SIGKILL).
/// </summary>
internal sealed class WorkerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private WorkerProcess(Process process) => _process = process;

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>What the worker logged, for a failing test's message.</summary>
    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    public static async Task<WorkerProcess> StartAsync(string natsUrl, params string[] settings)
    {
        int port = FreePort.Next();
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "mirage")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in (string[])["serve", "--role", "worker", "--nats", natsUrl, "--model", SharedAssets.EmbeddedReader, "--urls", $"http://127.0.0.1:{port}", .. settings])
            start.ArgumentList.Add(argument);
        var worker = new WorkerProcess(Process.Start(start)!);
        worker._process.OutputDataReceived += (_, e) => worker.Append(e.Data);
        worker._process.ErrorDataReceived += (_, e) => worker.Append(e.Data);
        worker._process.BeginOutputReadLine();
        worker._process.BeginErrorReadLine();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        for (int i = 0; i < 600; i++)
        {
            if (worker._process.HasExited)
                throw new InvalidOperationException($"The worker exited ({worker._process.ExitCode}):\n{worker.Output}");
            try
            {
                if ((await http.GetAsync("/health", TestContext.Current.CancellationToken)).IsSuccessStatusCode)
                    return worker;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        throw new TimeoutException($"The worker did not become ready:\n{worker.Output}");
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
