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

    [Theory]
    [InlineData("\"architectures\": [5]", "'architectures' must be a list of strings")]
    [InlineData("\"num_key_value_heads\": 0", "'num_key_value_heads' must be positive")]
    [InlineData("\"hidden_size\": 1000000000", "describes")]
    public async Task Inspect_ADamagedConfig_Exits1_WithOneLineNamingTheFileAndField(string field, string expected)
    {
        using var temp = new TempDirectory();
        var config = Mirage.Core.Models.ModelConfig.Parse("""
            {"architectures": ["LlamaForCausalLM"], "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 1,
             "num_attention_heads": 2, "vocab_size": 264, "max_position_embeddings": 64}
            """);
        Mirage.Core.Models.CheckpointWriter.WriteRandom(temp.Path, config);
        Mirage.Core.Tokenization.TokenizerJsonWriter.WriteByteLevel(temp.Path, [], ["<s>", "</s>"], "<s>", "</s>");
        var path = Path.Combine(temp.Path, "config.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        var edit = System.Text.Json.Nodes.JsonNode.Parse("{" + field + "}")!.AsObject().Single();
        json[edit.Key] = edit.Value!.DeepClone();
        File.WriteAllText(path, json.ToJsonString());

        var (exitCode, _, error) = await CliRunner.RunAsync("inspect", "--model", temp.Path);
        Assert.Equal(1, exitCode);
        Assert.StartsWith("error: ", error);
        Assert.Contains(path, error);
        Assert.Contains(expected, error);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public async Task Inspect_ATemplateNestedPastTheLimit_Exits1_InOneLine_AndAnUnsupportedOneIsShown()
    {
        using var temp = new TempDirectory();
        var deep = SharedAssets.Stories260KWithChatTemplate(temp, string.Concat(Enumerable.Repeat("{% if true %}", 20_000)));
        var (exitCode, _, error) = await CliRunner.RunAsync("inspect", "--model", deep);
        Assert.Equal(1, exitCode);
        Assert.Contains("Chat template: statements nest more than 64 deep", error);
        Assert.Single(error.Trim().Split('\n'));

        using var other = new TempDirectory();
        var unsupported = SharedAssets.Stories260KWithChatTemplate(other, "{% macro f() %}{% endmacro %}");
        (exitCode, var output, _) = await CliRunner.RunAsync("inspect", "--model", unsupported);
        Assert.Equal(0, exitCode);
        Assert.Matches(@"chat template\s+yes \(29 chars\), not usable: Chat template: the statement 'macro' is not supported", output);
    }

    [Fact]
    public async Task Inspect_AWorkingTemplate_SaysItRenders()
    {
        using var temp = new TempDirectory();
        var model = SharedAssets.Stories260KWithChatTemplate(temp, "{% for m in messages %}{{ m.content }}{% endfor %}");
        var (exitCode, output, _) = await CliRunner.RunAsync("inspect", "--model", model);
        Assert.Equal(0, exitCode);
        Assert.Matches(@"chat template\s+yes \(50 chars, renders a sample conversation\)", output);
    }
}
