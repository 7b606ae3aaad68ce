using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Mirage.Host.Tests.Server;
using Mirage.Tests;

namespace Mirage.Host.Tests.Cli;

/// <summary>The real <c>mirage serve</c> executable: start-up failures, and SIGTERM while requests are in flight.</summary>
public sealed class ServeProcessTests
{
    private static readonly CancellationToken Token = TestContext.Current.CancellationToken;

    // The apphost the test build places beside the tests.
    private static string Executable => Path.Combine(AppContext.BaseDirectory, "mirage");

    private static Process Start(params string[] args) => StartIn(null, args);

    private static Process StartIn(string? workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo(Executable) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory ?? "" };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        start.Environment["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information";
        return Process.Start(start)!;
    }

    private static async Task<(int ExitCode, string Error)> RunToEnd(params string[] args)
    {
        using var process = Start(args);
        var error = process.StandardError.ReadToEndAsync(Token);
        _ = process.StandardOutput.ReadToEndAsync(Token);
        await process.WaitForExitAsync(Token).WaitAsync(TimeSpan.FromSeconds(60), Token);
        return (process.ExitCode, (await error).Trim());
    }

    [Theory]
    [InlineData("--Server:MaxQueueLength=0", "MaxQueueLength")]
    [InlineData("--Server:ApiKeys:0=", "Server:ApiKeys:0 is empty or blank")]
    [InlineData("--Server:ApiKeys:0=   ", "Server:ApiKeys:0 is empty or blank")]
    [InlineData("--Server:ApiKeys:0= key", "whitespace")]
    [InlineData("--model=/nonexistent", "Model folder '/nonexistent' does not exist")]
    public async Task AStartThatCannotServe_EndsWithOneLine_AndExit1(string setting, string expected)
    {
        var (exitCode, error) = await RunToEnd("serve", "--urls", "http://127.0.0.1:0", setting);
        Assert.Equal(1, exitCode);
        Assert.StartsWith("error: ", error);
        Assert.Contains(expected, error);
        Assert.DoesNotContain("\n", error);
    }

    [Theory]
    [InlineData("api", null, "Nats:Url is not set; --role api needs --nats nats://HOST:4222.")]
    [InlineData("worker", "http://mirage:s3cret@10.0.0.1:4222", "Nats:Url names 'http://***@10.0.0.1:4222'; give nats://HOST:PORT")]
    public async Task AScaleOutRoleWithoutAUsableNatsUrl_EndsWithOneLine_WithoutTheSecret(string role, string? nats, string expected)
    {
        var (exitCode, error) = await RunToEnd(["serve", "--urls", "http://127.0.0.1:0", "--role", role, .. nats is null ? Array.Empty<string>() : ["--nats", nats]]);
        Assert.Equal(1, exitCode);
        Assert.Contains(expected, error);
        Assert.DoesNotContain("s3cret", error);
        Assert.DoesNotContain("\n", error);
    }

    [Fact]
    public async Task ServeWithoutModel_KeepsServing_AndHealthSaysWhyItIsNotReady()
    {
        using var process = Start("serve", "--urls", "http://127.0.0.1:0", "--model=/nonexistent", "--Server:ServeWithoutModel=true");
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(await ListeningAddress(process)) };
            var health = await http.GetAsync("/health", Token);
            for (int i = 0; i < 200 && (await health.Content.ReadAsStringAsync(Token)).Contains("still loading", StringComparison.Ordinal); i++)
            {
                await Task.Delay(50, Token);
                health = await http.GetAsync("/health", Token);
            }
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.Contains("Model folder '/nonexistent' does not exist", await health.Content.ReadAsStringAsync(Token));
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/alive", Token)).StatusCode);
        }
        finally
        {
            process.Kill();
        }
    }

    private static async Task<string> ListeningAddress(Process process)
    {
        string? address = null;
        while (address is null && await process.StandardOutput.ReadLineAsync(Token) is { } line)
            address = Regex.Match(line, @"Now listening on: (http://\S+)") is { Success: true } m ? m.Groups[1].Value : null;
        Assert.NotNull(address);
        _ = process.StandardOutput.ReadToEndAsync(Token);
        _ = process.StandardError.ReadToEndAsync(Token);
        return address;
    }

    [Fact]
    public async Task ServesAGgufModel_GivenAsARelativeFile()
    {
        using var temp = new TempDirectory();
        Mirage.Core.Models.Gguf.GgufConverter.FromHuggingFace(SharedAssets.EmbeddedReader, temp.File("reader-q8_0.gguf"), Mirage.Core.Models.Gguf.GgufType.Q8_0);
        using var process = StartIn(temp.Path, "serve", "--urls", "http://127.0.0.1:0", "--model", "reader-q8_0.gguf");
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(await ListeningAddress(process)) };
            for (int i = 0; i < 200 && (await http.GetAsync("/health", Token)).StatusCode != HttpStatusCode.OK; i++)
                await Task.Delay(50, Token);
            var models = await http.GetStringAsync("/v1/models", Token);
            Assert.Contains("\"reader-q8_0\"", models);
            var cited = await http.PostAsJsonAsync("/v1/citations", new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer }, Token);
            Assert.Equal(HttpStatusCode.OK, cited.StatusCode);
            var result = System.Text.Json.Nodes.JsonNode.Parse(await cited.Content.ReadAsStringAsync(Token))!;
            Assert.StartsWith("GGUF v3", result["model_source"]!.GetValue<string>());
            Assert.Equal("llama.cpp", result["engine"]!.GetValue<string>());

            // A GGUF file runs on llama.cpp by default, which computes no gradients: a gradient method is the client's error.
            var saliency = await http.PostAsJsonAsync("/v1/citations",
                new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer, options = new { method = "saliency" } }, Token);
            Assert.Equal(HttpStatusCode.BadRequest, saliency.StatusCode);
            Assert.Contains("needs gradients", await saliency.Content.ReadAsStringAsync(Token));
        }
        finally
        {
            process.Kill();
        }
    }

    [Fact]
    public async Task APortInUse_EndsWithOneLine_AndExit1()
    {
        using var taken = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var (exitCode, error) = await RunToEnd("serve", "--urls", $"http://127.0.0.1:{((IPEndPoint)taken.LocalEndpoint).Port}");
        Assert.Equal(1, exitCode);
        Assert.Matches("^error: Failed to bind to address .*address already in use", error);
    }

    [Fact]
    public async Task SigTerm_DrainsInFlightWork_AnswersTheRest503_AndExits0()
    {
        using var process = Start("serve", "--urls", "http://127.0.0.1:0", "--model", SharedAssets.EmbeddedReader, "--Server:ShutdownTimeoutSeconds=3", "--Server:MaxQueueLength=200");
        using var http = new HttpClient { BaseAddress = new Uri(await ListeningAddress(process)) };
        for (int i = 0; i < 200 && (await http.GetAsync("/health", Token)).StatusCode != HttpStatusCode.OK; i++)
            await Task.Delay(50, Token);

        var essay = string.Join(" ", Enumerable.Repeat(RunningServer.Answer, 4));
        // More work than the 3 s the drain allows, which is longer than the 2 s System.CommandLine would give:
        // cited by saliency, a backward pass per selected token (the default, ablation, can finish 80 in 3 s).
        var requests = Enumerable.Range(0, 120)
            .Select(_ => http.PostAsJsonAsync("/v1/citations", new { question = RunningServer.Question, passages = RunningServer.Passages, answer = essay, options = new { method = "saliency" } }, Token))
            .ToList();
        await Task.WhenAny(requests);
        Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();

        var statuses = (await Task.WhenAll(requests)).Select(r => r.StatusCode).ToList();
        await process.WaitForExitAsync(Token).WaitAsync(TimeSpan.FromSeconds(60), Token);
        Assert.Equal(0, process.ExitCode);
        Assert.All(statuses, s => Assert.Contains(s, new[] { HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable }));
        Assert.Contains(HttpStatusCode.OK, statuses);
        Assert.Contains(HttpStatusCode.ServiceUnavailable, statuses);
    }
}
