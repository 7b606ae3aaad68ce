using Mirage.Tests;

namespace Mirage.Host.Tests.Cli;

public sealed class AskCommandTests
{
    [Fact]
    public async Task Ask_GeneratesAnAnswerAndCitesIt()
    {
        var passages = Path.Combine(SharedAssets.RepositoryRoot, "samples", "kite-passages.json");
        var (exitCode, output, error) = await CliRunner.RunAsync("ask", "--model", SharedAssets.Stories260KHf, "--question", "Who has a red kite?", "--passages", passages, "--max-tokens", "24");
        Assert.Equal(0, exitCode);
        var lines = output.Split('\n');
        Assert.False(string.IsNullOrWhiteSpace(lines[0]));
        Assert.Contains("[1] dog: The dog", output);
        Assert.Contains("[2] tim: Tim", output);
        Assert.Contains("answered in", error);
        Assert.Contains("cited in", error);
    }
}
