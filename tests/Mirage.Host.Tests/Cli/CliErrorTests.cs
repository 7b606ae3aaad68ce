using Mirage.Tests;

namespace Mirage.Host.Tests.Cli;

/// <summary>What the CLI says when it is used wrongly: one line naming the problem and a hint, exit 1.</summary>
[Collection(nameof(ModelReferenceCommandTests))] // some set HF_* variables, as those tests do
public sealed class CliErrorTests
{
    private static string Passages => Path.Combine(SharedAssets.RepositoryRoot, "samples", "reader-passages.json");

    [Theory]
    [InlineData("Argument 'foo' not recognized. Must be one of: 'saliency', 'input_x_gradient', 'integrated_gradients', 'attention', 'occlusion', 'value_zeroing', 'layer_gradient_x_activation', 'layer_integrated_gradients', 'ablation', 'routes'", "cite", "--question", "q", "--passages", "p.json", "--answer", "a", "--method", "foo")]
    [InlineData("Option '--passages' is required.", "ask", "--question", "q")]
    [InlineData("Unrecognized command or argument 'frob'.", "frob")]
    [InlineData("--question is empty: ask needs a question to answer.", "ask", "--question", " ", "--passages", "p.json")]
    public async Task ParserErrors_AreOneLine_AndAHint(string expected, params string[] args)
    {
        var (exitCode, output, error) = await CliRunner.RunAsync(args);
        Assert.Equal(1, exitCode);
        Assert.Equal("", output);
        var lines = error.Trim().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.Equal($"error: {expected}", lines[0]);
        Assert.StartsWith("Run 'mirage ", lines[1]);
    }

    [Fact]
    public async Task DTypeAndEngineHelp_ListWhatTheyAccept()
    {
        var (_, output, _) = await CliRunner.RunAsync("cite", "--help");
        var help = System.Text.RegularExpressions.Regex.Replace(output, @"\s+", " ");
        Assert.Contains("auto (bfloat16 on CPUs with native bfloat16 for models of hidden size 512 or more, float32 otherwise), float32, bfloat16, float16 (GPU only) or float64", help);
        Assert.Contains("auto (llama.cpp for a GGUF file when the method needs forward passes only, torch otherwise), torch, or llama.cpp", help);
    }

    [Fact]
    public async Task LlamaCppForAFolder_OrForAGradientMethod_IsRefusedInOneLine()
    {
        var (folderExit, _, folderError) = await CliRunner.RunAsync("cite", "--model", SharedAssets.EmbeddedReader, "--engine", "llama.cpp",
            "--question", "Where was Lousdrur Rourti born?", "--passages", Passages, "--answer", "Lousdrur Rourti was born in Grekbrothholm.");
        Assert.Equal(1, folderExit);
        Assert.Contains("The llama.cpp engine reads GGUF files", folderError);
        Assert.Single(folderError.Trim().Split('\n'));
        var (engineExit, _, engineError) = await CliRunner.RunAsync("cite", "--engine", "onnx", "--question", "q", "--passages", Passages, "--answer", "a");
        Assert.Equal(1, engineExit);
        Assert.Contains("'onnx'", engineError);
    }

    [Fact]
    public async Task ATooLongQuestion_IsBlamedOnTheQuestion()
    {
        var question = string.Join(" ", Enumerable.Repeat("Where was Lousdrur Rourti born?", 400));
        var (exitCode, _, error) = await CliRunner.RunAsync("cite", "--model", SharedAssets.EmbeddedReader, "--question", question, "--passages", Passages, "--answer", "Lousdrur Rourti was born in Grouscelford.");
        Assert.Equal(1, exitCode);
        Assert.Contains("Shorten the question", error);
        Assert.DoesNotContain("passages", error.Split("context.")[^1]);
    }

    [Fact]
    public async Task Pull_WithoutANetwork_SaysSoInOneLine()
    {
        using var port = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        port.Start();
        var closed = ((System.Net.IPEndPoint)port.LocalEndpoint).Port;
        port.Stop();
        var before = Environment.GetEnvironmentVariable("HF_ENDPOINT");
        Environment.SetEnvironmentVariable("HF_ENDPOINT", $"http://127.0.0.1:{closed}");
        try
        {
            using var cache = new TempDirectory();
            Environment.SetEnvironmentVariable("HF_HUB_CACHE", cache.Path);
            var (exitCode, _, error) = await CliRunner.RunAsync("pull", "some-org/some-model");
            Assert.Equal(1, exitCode);
            Assert.StartsWith($"error: Cannot reach http://127.0.0.1:{closed}/", error);
            Assert.Single(error.Trim().Split('\n'));
        }
        finally
        {
            Environment.SetEnvironmentVariable("HF_ENDPOINT", before);
            Environment.SetEnvironmentVariable("HF_HUB_CACHE", null);
        }
    }

    [Theory]
    [InlineData("error: Invalid url: 'notaurl'; --urls takes addresses such as http://127.0.0.1:5088", "serve", "--urls", "notaurl")]
    [InlineData("error: A setting cannot be read: Failed to convert configuration value 'abc' at 'Server:MaxPassages'", "serve", "--urls", "http://127.0.0.1:0", "--Server:MaxPassages=abc")]
    public async Task Serve_AMalformedAddressOrSetting_IsOneLine_NotUnexpected(string expected, params string[] args)
    {
        var (exitCode, _, error) = await CliRunner.RunAsync(args);
        Assert.Equal(1, exitCode);
        Assert.StartsWith(expected, error);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Theory]
    [InlineData("notaurl", new[] { "pull", "some-org/some-model" }, "error: HF_ENDPOINT 'notaurl' is not an http:// or https:// URL")]
    [InlineData(null, new[] { "pull", "some-org/some-model", "--max-file-gb", "-1" }, "error: --max-file-gb must be a positive number of GB, got -1.")]
    [InlineData(null, new[] { "pull", "hf:some-org/some-model@v1" }, "error: Cannot reach http://127.0.0.1:")]
    public async Task Pull_BadSettings_AreNamed_AndTheHfFormIsTheRepository(string? endpoint, string[] args, string expected)
    {
        using var port = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        port.Start();
        var closed = ((System.Net.IPEndPoint)port.LocalEndpoint).Port;
        port.Stop();
        var before = Environment.GetEnvironmentVariable("HF_ENDPOINT");
        Environment.SetEnvironmentVariable("HF_ENDPOINT", endpoint ?? $"http://127.0.0.1:{closed}");
        try
        {
            using var cache = new TempDirectory();
            Environment.SetEnvironmentVariable("HF_HUB_CACHE", cache.Path);
            var (exitCode, output, error) = await CliRunner.RunAsync(args);
            Assert.Equal(1, exitCode);
            Assert.StartsWith(expected, error);
            Assert.Single(error.Trim().Split('\n'));
            if (args[1].StartsWith("hf:", StringComparison.Ordinal))
                Assert.Contains("pulling some-org/some-model (v1)", output);
        }
        finally
        {
            Environment.SetEnvironmentVariable("HF_ENDPOINT", before);
            Environment.SetEnvironmentVariable("HF_HUB_CACHE", null);
        }
    }

    [Fact]
    public async Task AModelNotInTheCache_SuggestsPull()
    {
        using var cache = new TempDirectory();
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", cache.Path);
        try
        {
            var (exitCode, _, error) = await CliRunner.RunAsync("inspect", "--model", "hf:some-org/some-model");
            Assert.Equal(1, exitCode);
            Assert.Contains("is not in the Hugging Face cache", error);
            Assert.Contains("mirage pull some-org/some-model", error);
        }
        finally
        {
            Environment.SetEnvironmentVariable("HF_HUB_CACHE", null);
        }
    }
}
