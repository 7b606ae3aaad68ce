using System.CommandLine;
using Mirage.Core.Citations;
using Mirage.Core.Flow;

namespace Mirage.Host.Cli;

/// <summary>
/// <c>mirage inspect-flow</c>: why an answer sentence (or token) rests on the passages: the
/// information-flow routes graph, each passage's route share and the logit lens, as JSON.
/// </summary>
internal static class InspectFlowCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new ModelOptions(error);
        var question = new Option<string>("--question") { Description = "The question the answer responds to.", Required = true };
        var passages = new Option<string>("--passages") { Description = "JSON file: a list of {id?, title?, text, url?}, or an ALCE item with 'docs'.", Required = true };
        var answer = new Option<string>("--answer") { Description = "The answer (teacher-forced, not regenerated).", Required = true };
        var sentence = new Option<int?>("--sentence") { Description = "The answer sentence to trace, from 0 (the default: 0, unless --token is given)." };
        var token = new Option<int?>("--token") { Description = "One answer token to trace instead, from 0." };
        var threshold = new Option<double>("--threshold") { Description = "Contributions at or below it are dropped and the rest renormalised (LM-TT's default).", DefaultValueFactory = _ => RouteTracer.DefaultThreshold };
        var outFile = new Option<string?>("--out") { Description = "Write to this file instead of standard output." };

        var command = new Command("inspect-flow", "Show why an answer sentence cites a passage: the routes its information took through the model, per-passage route shares, and the logit lens, as JSON.");
        model.AddTo(command);
        foreach (var option in new Option[] { question, passages, answer, sentence, token, threshold, outFile })
            command.Options.Add(option);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var tokenIndex = parse.GetValue(token);
            var sentenceIndex = parse.GetValue(sentence) ?? (tokenIndex is null ? 0 : null);
            var request = new CitationRequest(parse.GetRequiredValue(question), PassageFile.Read(parse.GetRequiredValue(passages)), parse.GetRequiredValue(answer));
            using var lm = await model.LoadAsync(parse, cancellationToken, needsGradients: true);
            var routes = await new MirageCitationEngine(lm).TraceRoutesAsync(request, sentenceIndex, tokenIndex, parse.GetValue(threshold), cancellationToken);
            var json = MirageJson.Serialize(routes) + "\n";
            await CitationOutput.WriteAsync(json, parse.GetValue(outFile), output, error, cancellationToken);
            await error.WriteLineAsync(Summary(routes, lm.ModelId));
            return 0;
        });
        return command;
    }

    /// <summary>What a reader wants first, for the terminal: the shares, the strongest route and the lens by layer.</summary>
    internal static string Summary(PassageRoutes routes, string modelId)
    {
        string Token(int position) => Quoted(routes.Tokens[position]);
        string Passage(int position) => routes.Passages.FirstOrDefault(p => position >= p.TokenStart && position < p.TokenEnd) is { } p ? $", passage {Printable(p.Id)}" : "";
        var traced = routes.Sentence is int s ? $"answer sentence {s}" : $"answer token {routes.AnswerTokens[0]} {Token(routes.AnswerStart + routes.AnswerTokens[0])}";
        var lines = new List<string> { $"{traced}: {routes.Graph.Edges.Count} edges over {routes.Graph.Nodes.Count} nodes (model {modelId})" };
        if (routes.Passages.Count > 0)
            lines.Add("route shares: " + string.Join(", ", routes.Passages.OrderByDescending(p => p.Share).Select(p => $"passage {Printable(p.Id)} {p.Share:P1}")));
        var (route, weight) = routes.Graph.StrongestRoute();
        if (route.Count > 0)
            lines.Add($"strongest route ({weight:0.00}): " + string.Join(" -> ", route.Select(n => n.Kind switch
            {
                RouteNode.Input => $"{Token(n.Token)} ({n.Token}{Passage(n.Token)})",
                RouteNode.AfterAttention => $"{n.Id} {Token(n.Token)}",
                _ => n.Id,
            })));
        lines.Add("logit lens: " + string.Join(", ", routes.Lens.Where(r => r.Top.Count > 0).Select(r => $"{r.Node} {Quoted(r.Top[0].Text)} {r.Top[0].Value:P0}")));
        return string.Join('\n', lines);
    }

    // Token text and passage ids come from the model's vocabulary and the request: control characters are shown escaped.
    private static string Quoted(string text) => $"\"{Printable(text)}\"";

    private static string Printable(string text) => string.Concat(text.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
}
