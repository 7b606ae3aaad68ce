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

    [Fact]
    public async Task Ask_WithoutModel_UsesTheEmbeddedReader()
    {
        // The README's first command, answered as the README shows: the employer right and the
        // similar name's birthplace (the README explains the answer and its citations).
        var passages = Path.Combine(SharedAssets.RepositoryRoot, "samples", "reader-passages.json");
        var (exitCode, output, error) = await CliRunner.RunAsync("ask", "--question", "Which organisation does Lousdrur Rourti work for, and where was Lousdrur Rourti born?", "--passages", passages);
        Assert.True(exitCode == 0, error);
        var answer = output.Split('\n')[0];
        Assert.Equal("Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grekbrothholm.", System.Text.RegularExpressions.Regex.Replace(answer, @"\[\d+\]", ""));
        Assert.Matches(@"\[[1-4]\]", answer);
        Assert.Contains("[4] 4: Lousdrur Rourti", output);
        Assert.Contains("with reader", error);
    }
}
