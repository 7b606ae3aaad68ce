using System.Collections;
using System.Text;

namespace Mirage.Core.Tokenization.Jinja;

/// <summary>
/// A compiled Jinja template, for the chat templates in <c>tokenizer_config.json</c>: text and
/// <c>{{ }}</c> output, <c>if/elif/else</c>, <c>for</c> (with <c>loop.*</c>, <c>else</c>, and
/// <c>k, v</c> unpacking), <c>set</c> (including <c>namespace()</c> attributes), and
/// <c>raise_exception</c>. Anything else fails with a message naming the construct.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly List<Node> _body;

    private JinjaTemplate(List<Node> body) => _body = body;

    /// <summary>Compiles template source.</summary>
    /// <exception cref="ChatTemplateLimitException">The source is longer or nests deeper than <see cref="JinjaLimits"/> allow.</exception>
    /// <exception cref="MirageException">The template uses a construct this subset does not support, or is malformed.</exception>
    public static JinjaTemplate Parse(string source)
    {
        if (source.Length > JinjaLimits.MaxSourceChars)
            throw JinjaLimits.Exceeded($"its source is {source.Length:N0} characters, over the limit of {JinjaLimits.MaxSourceChars:N0}");
        var chunks = JinjaLexer.Split(source);
        int at = 0;
        var body = ParseBlock(chunks, ref at, out var end, depth: 0);
        if (end is not null)
            throw new MirageException($"Chat template: '{{% {end} %}}' has no opening statement.");
        return new JinjaTemplate(body);
    }

    /// <summary>
    /// Renders with the given variables (strings, numbers, booleans, lists and string-keyed
    /// dictionaries), within the loop, size and time limits of <see cref="JinjaLimits"/>.
    /// </summary>
    /// <exception cref="ChatTemplateLimitException">The render went past a limit.</exception>
    /// <exception cref="MirageException">The template refused the variables or failed on them.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables, CancellationToken cancellationToken = default)
    {
        var budget = new JinjaBudget(cancellationToken);
        var globals = variables.ToDictionary(kv => kv.Key, kv => kv.Value);
        globals["raise_exception"] = new Func<List<object?>, object?>(args =>
            throw new MirageException($"The chat template refused the messages: {JinjaValues.Render(args.FirstOrDefault())}"));
        globals["namespace"] = new Func<List<object?>, object?>(_ => new Dictionary<string, object?>());
        globals["range"] = new Func<List<object?>, object?>(args =>
        {
            long start = args.Count > 1 ? JinjaValues.Integer(args[0]) : 0, stop = JinjaValues.Integer(args.Count > 0 ? args[^1] : null);
            long count = Math.Max(0, stop - start);
            budget.CheckRange(count);
            var items = new List<object?>((int)count);
            for (long i = start; i < stop; i++)
                items.Add(i);
            return items;
        });
        var output = new StringBuilder();
        try
        {
            Execute(_body, new JinjaScope(globals, budget), output);
        }
        catch (Exception e) when (e is not MirageException and not OperationCanceledException)
        {
            // Casts, division by zero and the like on values the template did not expect.
            throw new MirageException($"Chat template: rendering failed ({e.Message})", e);
        }
        return output.ToString();
    }

    private abstract record Node;
    private sealed record TextNode(string Text) : Node;
    private sealed record OutputNode(JinjaExpression Value) : Node;
    private sealed record IfNode(List<(JinjaExpression Condition, List<Node> Body)> Branches, List<Node> Else) : Node;
    private sealed record ForNode(List<string> Names, JinjaExpression Items, List<Node> Body, List<Node> Else) : Node;
    private sealed record SetNode(string Target, JinjaExpression Value) : Node;

    // Parses until a closing keyword (endif, elif, else, endfor, ...) and returns it through `end`.
    private static List<Node> ParseBlock(List<JinjaChunk> chunks, ref int at, out string? end, int depth)
    {
        if (depth > JinjaLimits.MaxStatementNesting)
            throw JinjaLimits.Exceeded($"statements nest more than {JinjaLimits.MaxStatementNesting} deep");
        var nodes = new List<Node>();
        while (at < chunks.Count)
        {
            var chunk = chunks[at++];
            switch (chunk.Kind)
            {
                case JinjaChunkKind.Text:
                    nodes.Add(new TextNode(chunk.Text));
                    continue;
                case JinjaChunkKind.Output:
                    nodes.Add(new OutputNode(JinjaExpressionParser.Parse(chunk.Text)));
                    continue;
            }
            var keyword = chunk.Text.Split(' ', 2)[0];
            var rest = chunk.Text.Length > keyword.Length ? chunk.Text[(keyword.Length + 1)..].Trim() : "";
            switch (keyword)
            {
                case "if":
                    nodes.Add(ParseIf(chunks, ref at, rest, depth + 1));
                    break;
                case "for":
                    var (names, items) = JinjaExpressionParser.ParseFor(rest);
                    var body = ParseBlock(chunks, ref at, out var forEnd, depth + 1);
                    var otherwise = new List<Node>();
                    if (forEnd == "else")
                        otherwise = ParseBlock(chunks, ref at, out forEnd, depth + 1);
                    Require(forEnd, "endfor");
                    nodes.Add(new ForNode(names, items, body, otherwise));
                    break;
                case "set":
                    int equals = rest.IndexOf('=');
                    if (equals < 0)
                        throw new MirageException($"Chat template: block 'set' ({chunk.Text}) is not supported.");
                    nodes.Add(new SetNode(rest[..equals].Trim(), JinjaExpressionParser.Parse(rest[(equals + 1)..])));
                    break;
                case "generation" or "endgeneration":
                    break; // transformers' assistant-mask markers: no output of their own
                case "endif" or "elif" or "else" or "endfor":
                    end = chunk.Text;
                    return nodes;
                default:
                    throw new MirageException($"Chat template: the statement '{keyword}' is not supported.");
            }
        }
        end = null;
        return nodes;
    }

    private static IfNode ParseIf(List<JinjaChunk> chunks, ref int at, string condition, int depth)
    {
        var branches = new List<(JinjaExpression, List<Node>)>();
        var current = JinjaExpressionParser.Parse(condition);
        while (true)
        {
            var body = ParseBlock(chunks, ref at, out var end, depth);
            branches.Add((current, body));
            if (end is not null && end.StartsWith("elif ", StringComparison.Ordinal))
            {
                current = JinjaExpressionParser.Parse(end[5..]);
                continue;
            }
            var otherwise = new List<Node>();
            if (end == "else")
                otherwise = ParseBlock(chunks, ref at, out end, depth);
            Require(end, "endif");
            return new IfNode(branches, otherwise);
        }
    }

    private static void Require(string? end, string expected)
    {
        if (end != expected)
            throw new MirageException($"Chat template: expected '{{% {expected} %}}' but found {(end is null ? "the end" : $"'{{% {end} %}}'")}.");
    }

    private static void Execute(List<Node> nodes, JinjaScope scope, StringBuilder output)
    {
        foreach (var node in nodes)
        {
            scope.Budget.Tick();
            switch (node)
            {
                case TextNode text:
                    Append(output, text.Text);
                    break;
                case OutputNode value:
                    Append(output, JinjaValues.Render(value.Value(scope)));
                    break;
                case IfNode branch:
                    var taken = branch.Branches.FirstOrDefault(b => JinjaValues.Truthy(b.Condition(scope))).Body ?? branch.Else;
                    Execute(taken, scope, output);
                    break;
                case SetNode set:
                    var value2 = set.Value(scope);
                    int dot = set.Target.IndexOf('.');
                    if (dot > 0 && scope.Get(set.Target[..dot]) is IDictionary<string, object?> target)
                        target[set.Target[(dot + 1)..]] = value2;
                    else
                        scope.Set(set.Target, value2);
                    break;
                case ForNode loop:
                    RunFor(loop, scope, output);
                    break;
            }
        }
    }

    private static void Append(StringBuilder output, string text)
    {
        JinjaLimits.CheckLength((long)output.Length + text.Length, "the rendered prompt");
        output.Append(text);
    }

    private static void RunFor(ForNode loop, JinjaScope scope, StringBuilder output)
    {
        var items = loop.Items(scope) switch
        {
            IDictionary<string, object?> d => d.Keys.Cast<object?>().ToList(),
            string s => s.Select(c => (object?)c.ToString()).ToList(),
            IEnumerable e => e.Cast<object?>().ToList(),
            _ => [],
        };
        if (items.Count == 0)
        {
            Execute(loop.Else, scope, output);
            return;
        }
        for (int i = 0; i < items.Count; i++)
        {
            scope.Budget.Iterate();
            scope.Push();
            if (loop.Names.Count == 1)
                scope.Set(loop.Names[0], items[i]);
            else if (items[i] is IList pair)
                for (int n = 0; n < loop.Names.Count; n++)
                    scope.Set(loop.Names[n], n < pair.Count ? pair[n] : Undefined.Instance);
            scope.Set("loop", new Dictionary<string, object?>
            {
                ["index0"] = (long)i, ["index"] = (long)i + 1, ["first"] = i == 0, ["last"] = i == items.Count - 1,
                ["length"] = (long)items.Count, ["revindex0"] = (long)(items.Count - 1 - i), ["revindex"] = (long)(items.Count - i),
                ["previtem"] = i > 0 ? items[i - 1] : Undefined.Instance, ["nextitem"] = i + 1 < items.Count ? items[i + 1] : Undefined.Instance,
            });
            Execute(loop.Body, scope, output);
            scope.Pop();
        }
    }
}
