using System.Net;
using System.Text.Json.Nodes;
using Mirage.Host.Tests.Cli;
using Mirage.Tests;

namespace Mirage.Host.Tests.Server;

/// <summary>
/// <c>POST /v1/flow</c> and <c>mirage inspect-flow</c> on the embedded reader: the birthplace
/// sentence's routes flow mostly from the passage that states it, with the graph, shares and lens a
/// page or client needs; bad input is a one-line 400 (or exit 1).
/// </summary>
public sealed class FlowEndpointTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private const string Answer = "Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grouscelford.";

    private static object Body(int? sentence = 1, int? token = null, double? threshold = null) =>
        new { question = RunningServer.Question, passages = RunningServer.Passages, answer = Answer, sentence, token, threshold };

    [Fact]
    public async Task TheBirthplaceSentence_FlowsMostFromItsPassage_WithGraphSharesAndLens()
    {
        await using var server = await RunningServer.StartAsync();

        var response = await server.PostAsync("/v1/flow", Body());
        var text = await response.Content.ReadAsStringAsync(Token);
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        var routes = JsonNode.Parse(text)!;

        Assert.Equal(1, routes["sentence"]!.GetValue<int>());
        var shares = routes["passages"]!.AsArray().ToDictionary(p => p!["id"]!.GetValue<string>(), p => p!["share"]!.GetValue<double>());
        Assert.Equal("4", shares.MaxBy(p => p.Value).Key);
        var graph = routes["graph"]!;
        var nodes = graph["nodes"]!.AsArray().Select(n => n!["id"]!.GetValue<string>()).ToHashSet();
        Assert.Contains(nodes, n => n.StartsWith("X0_", StringComparison.Ordinal));
        Assert.All(graph["edges"]!.AsArray(), e => Assert.True(nodes.Contains(e!["from"]!.GetValue<string>()) && nodes.Contains(e["to"]!.GetValue<string>())));
        Assert.Equal(1, graph["token_shares"]!.AsArray().Sum(s => s!.GetValue<double>()), 1e-6);
        Assert.Equal(0.04, graph["threshold"]!.GetValue<double>());
        Assert.NotEmpty(routes["lens"]!.AsArray()[^1]!["top"]!.AsArray());

        // Routes as a citation method: the same sentence cites passage 4 first.
        var cited = await server.PostAsync("/v1/citations", new { question = RunningServer.Question, passages = RunningServer.Passages, answer = Answer, options = new { method = "routes" } });
        Assert.Equal(HttpStatusCode.OK, cited.StatusCode);
        Assert.Equal("4", JsonNode.Parse(await cited.Content.ReadAsStringAsync(Token))!["sentences"]![1]!["citations"]![0]!["passage_id"]!.GetValue<string>());

        // One token instead of a sentence, and a threshold of one's own.
        var token = await server.PostAsync("/v1/flow", Body(sentence: null, token: 3, threshold: 0.1));
        Assert.Equal(HttpStatusCode.OK, token.StatusCode);
        Assert.Equal([3], JsonNode.Parse(await token.Content.ReadAsStringAsync(Token))!["answer_tokens"]!.AsArray().Select(t => t!.GetValue<int>()));
    }

    [Fact]
    public async Task WhatCannotBeTraced_IsA400InOneLine()
    {
        await using var server = await RunningServer.StartAsync();
        foreach (var (body, expected) in new (object Body, string Expected)[]
        {
            (Body(sentence: 0, token: 0), "exactly one of 'sentence'"),
            (Body(sentence: null), "exactly one of 'sentence'"),
            (Body(sentence: -1), "count from 0"),
            (Body(threshold: 0.001), "'threshold' must be in [0.01, 0.5)"),
            (Body(sentence: 7), "Sentence 7 is outside the answer's 2 sentences"),
            (new { question = "q", passages = Array.Empty<object>(), answer = "a", sentence = 0 }, "'passages' is empty"),
        })
        {
            var response = await server.PostAsync("/v1/flow", body);
            var detail = JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!["detail"]!.GetValue<string>();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, detail);
            Assert.Contains(expected, detail, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', detail);
        }
    }

    [Fact]
    public async Task InspectFlow_WritesTheRoutesAsJson_SumsUpTheWrongBirthplacesRoutes_AndRefusesABadSentenceInOneLine()
    {
        using var temp = new TempDirectory();
        var passages = Path.Combine(SharedAssets.RepositoryRoot, "samples", "reader-passages.json");
        string[] args = ["inspect-flow", "--question", RunningServer.Question, "--passages", passages, "--answer", Answer];

        var (exitCode, output, error) = await CliRunner.RunAsync([.. args, "--sentence", "1"]);
        Assert.True(exitCode == 0, error);
        var routes = JsonNode.Parse(output)!;
        Assert.Equal("4", routes["passages"]!.AsArray().MaxBy(p => p!["share"]!.GetValue<double>())!["id"]!.GetValue<string>());
        Assert.Contains("route shares: passage 4 ", error, StringComparison.Ordinal);

        // The README's example: the reader's own answer puts the birthplace of passage 3's similar name
        // in its second sentence, and the routes of that token start mostly at passage 3.
        var (traced, _, summary) = await CliRunner.RunAsync(["inspect-flow", "--question", RunningServer.Question, "--passages", passages,
            "--answer", "Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grekbrothholm.", "--token", "12", "--out", Path.Combine(temp.Path, "flow.json")]);
        Assert.True(traced == 0, summary);
        Assert.Contains("answer token 12 \" Grekbrothholm\"", summary, StringComparison.Ordinal);
        Assert.Contains("route shares: passage 3 ", summary, StringComparison.Ordinal);
        Assert.Contains("strongest route (", summary, StringComparison.Ordinal);
        Assert.Contains("): \" Grekbrothholm\" (108, passage 3) -> ", summary, StringComparison.Ordinal);
        Assert.Matches("logit lens: .*I1_176 \" Grekbrothholm\" [0-9]+ %", summary);
        Assert.Equal(12, JsonNode.Parse(File.ReadAllText(Path.Combine(temp.Path, "flow.json")))!["answer_tokens"]![0]!.GetValue<int>());

        var (failed, _, message) = await CliRunner.RunAsync([.. args, "--sentence", "9"]);
        Assert.Equal(1, failed);
        Assert.Contains("Sentence 9 is outside the answer's 2 sentences", message, StringComparison.Ordinal);
    }
}
