using Mirage.Tests;

namespace Mirage.Host.Tests.Cli;

public sealed class GenerateCommandTests
{
    [Fact]
    public async Task Generate_Stories260K_PrintsTheReferenceContinuation()
    {
        var (exitCode, output, error) = await CliRunner.RunAsync(
            "generate", "--model", SharedAssets.Stories260KHf, "--prompt", "Once upon a time", "--max-tokens", "16");
        Assert.Equal("", error);
        Assert.Equal(0, exitCode);
        Assert.Equal(", there was a little girl named Lily. She loved to play\n", output);
    }

    [Fact]
    public async Task Generate_BFloat16WithStop_StopsBeforeTheStopString()
    {
        var (exitCode, output, _) = await CliRunner.RunAsync(
            "generate", "--model", SharedAssets.Stories260KHf, "--prompt", "Once upon a time", "--max-tokens", "30", "--dtype", "bfloat16", "--stop", ".");
        Assert.Equal(0, exitCode);
        Assert.DoesNotContain(".", output);
        Assert.StartsWith(",", output);
    }

    [Fact]
    public async Task Generate_SameSeed_SameSample()
    {
        string[] args = ["generate", "--model", SharedAssets.Stories260KHf, "--prompt", "Lily", "--max-tokens", "20", "--temperature", "1", "--seed", "42"];
        var first = await CliRunner.RunAsync(args);
        var second = await CliRunner.RunAsync(args);
        Assert.Equal(0, first.ExitCode);
        Assert.Equal(first.Output, second.Output);
    }

    [Fact]
    public async Task Generate_MissingModelFolder_ExitsWithAClearError()
    {
        var (exitCode, output, error) = await CliRunner.RunAsync("generate", "--model", "/no/such/model", "--prompt", "x");
        Assert.Equal(1, exitCode);
        Assert.Equal("", output);
        Assert.Equal("error: Model folder '/no/such/model' does not exist.\n", error);
    }

    [Theory]
    [InlineData("--max-tokens", "0", "--max-tokens must be at least 1")]
    [InlineData("--temperature", "-1", "--temperature must be 0 or positive")]
    [InlineData("--top-p", "1.5", "--top-p must be in (0, 1]")]
    [InlineData("--dtype", "int4", "int4")]
    public async Task Generate_OutOfRangeOption_IsRejectedNotClamped(string option, string value, string message)
    {
        var (exitCode, _, error) = await CliRunner.RunAsync("generate", "--model", "unused", "--prompt", "x", option, value);
        Assert.NotEqual(0, exitCode);
        Assert.Contains(message, error);
    }

    [Fact]
    public async Task Generate_WithoutModel_UsesTheEmbeddedReader()
    {
        Assert.True(File.Exists(Path.Combine(AppContext.BaseDirectory, "models", "reader", "model.safetensors")), "the build copies models/reader next to the executable");
        var (exitCode, output, error) = await CliRunner.RunAsync("generate", "--prompt", "Question: x", "--max-tokens", "2");
        Assert.True(exitCode == 0, error);
        Assert.NotEmpty(output);
    }

    [Fact]
    public async Task Generate_WithoutPrompt_SaysTheOptionIsRequired()
    {
        var (exitCode, _, error) = await CliRunner.RunAsync("generate", "--model", "unused");
        Assert.NotEqual(0, exitCode);
        Assert.Contains("--prompt", error);
    }
}
