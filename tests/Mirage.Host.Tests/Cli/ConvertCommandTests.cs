using Mirage.Tests;

namespace Mirage.Host.Tests.Cli;

/// <summary><c>mirage convert</c> then <c>--model FILE.gguf</c>, as a user runs them.</summary>
public sealed class ConvertCommandTests
{
    [Fact]
    public async Task TheReader_AsQ8Gguf_AnswersAndCitesAsTheFolderDoes()
    {
        using var temp = new TempDirectory();
        var gguf = temp.File("reader-q8_0.gguf");
        var (converted, written, _) = await CliRunner.RunAsync("convert", "--model", SharedAssets.EmbeddedReader, "--out", gguf, "--type", "q8_0");
        Assert.Equal(0, converted);
        Assert.StartsWith($"wrote {gguf}", written);

        var (_, inspected, _) = await CliRunner.RunAsync("inspect", "--model", gguf);
        Assert.Matches(@"source format\s+GGUF v3 \(F32 x\d+, Q8_0 x\d+\), dequantized", inspected);

        var passages = Path.Combine(SharedAssets.RepositoryRoot, "samples", "reader-passages.json");
        string[] ask = ["ask", "--question", "Which organisation does Lousdrur Rourti work for, and where was Lousdrur Rourti born?", "--passages", passages];
        var (fromFolder, folderOutput, _) = await CliRunner.RunAsync([.. ask, "--model", SharedAssets.EmbeddedReader]);
        var (fromGguf, ggufOutput, _) = await CliRunner.RunAsync([.. ask, "--model", gguf]);
        Assert.Equal((0, 0), (fromFolder, fromGguf));
        Assert.Equal(folderOutput.Split('\n')[0], ggufOutput.Split('\n')[0]);
        Assert.Contains("[4]", ggufOutput.Split('\n')[0]);

        // The JSON result says which weights the citations explain.
        var (_, json, _) = await CliRunner.RunAsync([.. ask, "--model", gguf, "--format", "json"]);
        Assert.Matches(@"GGUF v3 \(F32 x\d+, Q8_0 x\d+\), dequantized", System.Text.Json.Nodes.JsonNode.Parse(json)!["model_source"]!.GetValue<string>());
    }
}
