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

        // By default a GGUF file runs on llama.cpp, its weights as stored; on torch they are dequantized.
        var (_, inspected, _) = await CliRunner.RunAsync("inspect", "--model", gguf);
        Assert.Matches(@"source format\s+GGUF v3 \(F32 x\d+, Q8_0 x\d+\)\n", inspected);
        Assert.Matches(@"engine\s+llama.cpp\n", inspected);
        var (_, onTorch, _) = await CliRunner.RunAsync("inspect", "--model", gguf, "--engine", "torch");
        Assert.Matches(@"source format\s+GGUF v3 \(F32 x\d+, Q8_0 x\d+\), dequantized", onTorch);
        Assert.Matches(@"engine\s+torch\n", onTorch);

        var passages = Path.Combine(SharedAssets.RepositoryRoot, "samples", "reader-passages.json");
        string[] ask = ["ask", "--question", "Which organisation does Lousdrur Rourti work for, and where was Lousdrur Rourti born?", "--passages", passages];
        var (fromFolder, folderOutput, _) = await CliRunner.RunAsync([.. ask, "--model", SharedAssets.EmbeddedReader]);
        var (fromGguf, ggufOutput, _) = await CliRunner.RunAsync([.. ask, "--model", gguf]);
        Assert.Equal((0, 0), (fromFolder, fromGguf));
        Assert.Equal(folderOutput.Split('\n')[0], ggufOutput.Split('\n')[0]);
        Assert.Contains("[4]", ggufOutput.Split('\n')[0]);

        // The JSON result says which weights the citations explain, and what ran them.
        var (_, json, _) = await CliRunner.RunAsync([.. ask, "--model", gguf, "--format", "json"]);
        var result = System.Text.Json.Nodes.JsonNode.Parse(json)!;
        Assert.Matches(@"^GGUF v3 \(F32 x\d+, Q8_0 x\d+\)$", result["model_source"]!.GetValue<string>());
        Assert.Equal("llama.cpp", result["engine"]!.GetValue<string>());
        var (_, torchJson, _) = await CliRunner.RunAsync([.. ask, "--model", gguf, "--format", "json", "--engine", "torch"]);
        var torchResult = System.Text.Json.Nodes.JsonNode.Parse(torchJson)!;
        Assert.Matches(@"GGUF v3 \(F32 x\d+, Q8_0 x\d+\), dequantized", torchResult["model_source"]!.GetValue<string>());
        Assert.Equal("torch", torchResult["engine"]!.GetValue<string>());
    }
}
