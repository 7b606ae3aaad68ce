using System.Text.Json.Nodes;
using Mirage.Tests;

namespace Mirage.Host.Tests.Cli;

public sealed class CiteCommandTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly string SamplePassages = Path.Combine(SharedAssets.RepositoryRoot, "samples", "kite-passages.json");

    private static string[] Args(params string[] extra) =>
    [
        "cite", "--model", SharedAssets.Stories260KHf, "--question", "One day,", "--passages", SamplePassages,
        "--answer", "Tim went to the park with his red kite. Tim was very happy.",
        "--prompt-template", "Once upon a time, there were three friends. {passages}\\n{question}",
        "--passage-template", "{text}", "--passage-separator", " ", .. extra,
    ];

    [Fact]
    public async Task Text_MarksTheSentenceWithThePassageThatNamesTheCharacter()
    {
        // MIRAGE's saliency: only "Tim" in the first sentence is context-sensitive enough to be selected.
        var (exitCode, output, error) = await CliRunner.RunAsync(Args("--method", "saliency"));
        Assert.Equal(0, exitCode);
        Assert.StartsWith("Tim went to the park with his red kite.[2] Tim was very happy.\n", output);
        Assert.Contains("[2] tim: Tim\n", output);
        Assert.Contains("[1] dog: The dog (not cited)", output);
        Assert.Contains("3 forward and", error);
    }

    [Fact]
    public async Task Ablation_IsTheDefault_ForwardPassesOnly_AndVerifiedOnRequest()
    {
        // Removing Tim's passage lowers both sentences (each names Tim), and nothing else matters.
        var (exitCode, output, error) = await CliRunner.RunAsync(Args("--verify"));
        Assert.Equal(0, exitCode);
        Assert.StartsWith("Tim went to the park with his red kite.[2] Tim was very happy.[2]\n", output);
        Assert.Contains("[1] dog: The dog (not cited)", output);
        Assert.Matches(@"Sentence 1: removing its passages lowers it by \d+\.\d\d nats, with only them it changes by [+-]\d+\.\d\d nats: verified\.", output);
        Assert.Contains(" 0 backward passes", error);

        // Saliency's citations verified the same way: the second sentence cites nothing, so it has no verdict.
        var (_, saliency, _) = await CliRunner.RunAsync(Args("--method", "saliency", "--verify", "--format", "json"));
        var sentences = JsonNode.Parse(saliency)!["sentences"]!.AsArray();
        Assert.True(sentences[0]!["support"]!["verified"]!.GetValue<bool>());
        Assert.True(sentences[0]!["support"]!["necessity"]!.GetValue<double>() > 1);
        Assert.Null(sentences[1]!["support"]);
    }

    [Fact]
    public async Task NoContext_IsLiteralByDefault_TrimOnRequest_AndRecorded()
    {
        // The stories template puts a space after the block ("{passages}\n{question}" joins with a newline): trim drops it.
        var literal = JsonNode.Parse((await CliRunner.RunAsync(Args("--format", "json"))).Output)!;
        var trim = JsonNode.Parse((await CliRunner.RunAsync(Args("--format", "json", "--no-context", "trim"))).Output)!;
        Assert.Equal("Literal", literal["options"]!["prompt"]!["no_context"]!.GetValue<string>());
        Assert.Equal("Trim", trim["options"]!["prompt"]!["no_context"]!.GetValue<string>());
        var ids = (JsonNode json) => json["inputs"]!["no_context_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToList();
        Assert.NotEqual(ids(literal), ids(trim));
        Assert.Equal(literal["inputs"]!["with_context_ids"]!.ToJsonString(), trim["inputs"]!["with_context_ids"]!.ToJsonString());
    }

    [Fact]
    public async Task Json_IsTheEngineResult()
    {
        var (exitCode, output, _) = await CliRunner.RunAsync(Args("--format", "json"));
        Assert.Equal(0, exitCode);
        var json = JsonNode.Parse(output)!;
        Assert.Equal("tim", json["sentences"]![0]!["citations"]![0]!["passage_id"]!.GetValue<string>());
        Assert.Equal("stories260K-hf", json["model_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Html_IsOneSelfContainedPageWithCitationsBarsAndHighlights()
    {
        var path = _temp.File("cite.html");
        var (exitCode, _, error) = await CliRunner.RunAsync(Args("--format", "html", "--out", path));
        Assert.Equal(0, exitCode);
        Assert.Contains($"wrote {path}", error);
        var html = File.ReadAllText(path);
        Assert.Contains("<a class=\"cite\" href=\"#passage-2\"", html);
        Assert.Contains("<article id=\"passage-2\">", html);
        Assert.Contains("class=\"bar selected\"", html);
        Assert.Contains("<script type=\"application/json\" id=\"cues\">{\"0\":[", html);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotContain("src=\"http", html);
    }

    [Fact]
    public async Task AlceItem_IsAcceptedAsPassagesFile()
    {
        var path = _temp.File("alce.json");
        File.WriteAllText(path, """{"question": "q", "docs": [{"title": "Tim", "text": "Tim has a red kite."}, {"title": "Dog", "text": "A big dog ran."}]}""");
        var (exitCode, output, _) = await CliRunner.RunAsync("cite", "--model", SharedAssets.Stories260KHf, "--question", "Who?", "--passages", path, "--answer", "Tim has a kite.");
        Assert.Equal(0, exitCode);
        Assert.Contains("[1] 1: Tim", output);
    }

    [Theory]
    [InlineData("missing.json", null, "Passages file")]
    [InlineData("bad.json", "{ not json", "is not valid JSON")]
    [InlineData("notext.json", """[{"title": "x"}]""", "passage 1 has no 'text' field")]
    [InlineData("empty.json", "[]", "No passages")]
    public async Task BadPassagesFile_ExitsWithAClearError(string name, string? content, string message)
    {
        var path = _temp.File(name);
        if (content is not null)
            File.WriteAllText(path, content);
        var (exitCode, _, error) = await CliRunner.RunAsync("cite", "--model", SharedAssets.Stories260KHf, "--question", "q", "--passages", path, "--answer", "a.");
        Assert.Equal(1, exitCode);
        Assert.Contains(message, error);
    }

    [Fact]
    public async Task EmptyAnswerOrUnknownFormat_IsRejected()
    {
        var (exitCode, _, error) = await CliRunner.RunAsync("cite", "--model", SharedAssets.Stories260KHf, "--question", "q", "--passages", SamplePassages, "--answer", " ");
        Assert.Equal(1, exitCode);
        Assert.Contains("The answer is empty", error);
        (exitCode, _, error) = await CliRunner.RunAsync(Args("--format", "pdf"));
        Assert.NotEqual(0, exitCode);
        Assert.Contains("pdf", error);
    }
}
