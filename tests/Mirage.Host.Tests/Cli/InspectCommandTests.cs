using Mirage.Tests;

namespace Mirage.Host.Tests.Cli;

public sealed class InspectCommandTests
{
    [Fact]
    public async Task Inspect_Stories260K_PrintsArchitectureSizeDtypeAndTokenizer()
    {
        var (exitCode, output, _) = await CliRunner.RunAsync("inspect", "--model", SharedAssets.Stories260KHf);
        Assert.Equal(0, exitCode);
        Assert.Matches(@"architecture\s+LlamaForCausalLM", output);
        Assert.Matches(@"parameters\s+260,032 \(0\.26M\)", output);
        Assert.Matches(@"checkpoint dtype\s+float32", output);
        Assert.Matches(@"attention heads\s+8 query, 4 key/value, head dim 8", output);
        Assert.Matches(@"tokenizer\s+sentencepiece, 512 ids", output);
        Assert.Matches(@"bos\s+1 \(added: True\)", output);
        Assert.Matches(@"tied embeddings\s+True", output);
    }

    [Fact]
    public async Task Inspect_FolderThatIsNotACheckpoint_ExplainsWhatIsMissing()
    {
        using var temp = new TempDirectory();
        var (exitCode, _, error) = await CliRunner.RunAsync("inspect", "--model", temp.Path);
        Assert.Equal(1, exitCode);
        Assert.Contains("has no config.json", error);
    }
}
