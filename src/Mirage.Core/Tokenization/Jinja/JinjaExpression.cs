using System.Globalization;
using System.Text;

namespace Mirage.Core.Tokenization.Jinja;

/// <summary>Jinja's undefined value: renders empty, is falsy, and fails only when called.</summary>
internal sealed class Undefined
{
    public static readonly Undefined Instance = new();

    public override string ToString() => "";
}

/// <summary>A parsed expression: evaluated against a scope of variables.</summary>
internal delegate object? JinjaExpression(JinjaScope scope);

/// <summary>Variables in scope (innermost last); <c>set</c> writes to the innermost frame.</summary>
internal sealed class JinjaScope
{
    private readonly List<Dictionary<string, object?>> _frames;

    public JinjaScope(Dictionary<string, object?> globals, JinjaBudget budget)
    {
        _frames = [globals];
        Budget = budget;
    }

    /// <summary>What the render may still spend.</summary>
    public JinjaBudget Budget { get; }

    public object? Get(string name)
    {
        for (int i = _frames.Count - 1; i >= 0; i--)
            if (_frames[i].TryGetValue(name, out var value))
                return value;
        return Undefined.Instance;
    }

    public void Set(string name, object? value) => _frames[^1][name] = value;

    public void Push() => _frames.Add([]);

    public void Pop() => _frames.RemoveAt(_frames.Count - 1);
}

/// <summary>
/// Parses the expression language of Jinja as chat templates use it: literals, lists, dicts,
/// attribute and item access, slices, calls, filters, tests, arithmetic, comparison, membership,
/// boolean logic, <c>~</c> concatenation and the inline <c>if/else</c>.
/// </summary>
internal sealed class JinjaExpressionParser
{
    private readonly List<string> _tokens;
    private int _at;
    private int _depth;

    private JinjaExpressionParser(string source) => _tokens = Tokenize(source);

    public static JinjaExpression Parse(string source)
    {
        try
        {
            var parser = new JinjaExpressionParser(source);
            var expression = parser.Ternary();
            if (parser._at != parser._tokens.Count)
                throw new MirageException($"Chat template: unexpected '{parser._tokens[parser._at]}' in '{Excerpt(source)}'.");
            return expression;
        }
        catch (Exception e) when (e is not MirageException)
        {
            // An index past the last token, a number that does not parse: a malformed expression.
            throw new MirageException($"Chat template: cannot read the expression '{Excerpt(source)}'.", e);
        }
    }

    private static string Excerpt(string source) => source.Length <= 80 ? source : source[..80] + "...";

    // Recursion through brackets, 'not', signs and inline 'if': bounded, so a hostile template
    // cannot overflow the stack while it is parsed or evaluated.
    private T Nested<T>(Func<T> parse)
    {
        if (++_depth > JinjaLimits.MaxExpressionNesting)
            throw JinjaLimits.Exceeded($"an expression nests more than {JinjaLimits.MaxExpressionNesting} deep");
        try
        {
            return parse();
        }
        finally
        {
            _depth--;
        }
    }

    /// <summary>Parses <c>target = value</c> or <c>a, b in xs</c>-style prefixes: returns the remaining parser position's text.</summary>
    public static (List<string> Names, JinjaExpression Iterable) ParseFor(string source)
    {
        int inAt = source.IndexOf(" in ", StringComparison.Ordinal);
        if (inAt < 0)
            throw new MirageException($"Chat template: cannot read 'for {source}'.");
        var names = source[..inAt].Split(',').Select(n => n.Trim()).ToList();
        return (names, Parse(source[(inAt + 4)..]));
    }

    private string? Peek => _at < _tokens.Count ? _tokens[_at] : null;

    private bool Accept(string token)
    {
        if (Peek != token)
            return false;
        _at++;
        return true;
    }

    private void Expect(string token)
    {
        if (!Accept(token))
            throw new MirageException($"Chat template: expected '{token}' but found '{Peek ?? "end"}'.");
    }

    private JinjaExpression Ternary() => Nested(() =>
    {
        var value = Or();
        if (Peek != "if")
            return value;
        _at++;
        var condition = Or();
        JinjaExpression otherwise = Accept("else") ? Ternary() : (_ => Undefined.Instance);
        return s => JinjaValues.Truthy(condition(s)) ? value(s) : otherwise(s);
    });

    private JinjaExpression Or()
    {
        var left = And();
        while (Accept("or"))
        {
            var (l, r) = (left, And());
            left = s => JinjaValues.Truthy(l(s)) ? l(s) : r(s);
        }
        return left;
    }

    private JinjaExpression And()
    {
        var left = Not();
        while (Accept("and"))
        {
            var (l, r) = (left, Not());
            left = s => JinjaValues.Truthy(l(s)) ? r(s) : l(s);
        }
        return left;
    }

    private JinjaExpression Not()
    {
        if (Accept("not"))
        {
            var inner = Nested(Not);
            return s => !JinjaValues.Truthy(inner(s));
        }
        return Comparison();
    }

    private JinjaExpression Comparison()
    {
        var left = Concat();
        while (true)
        {
            var l = left;
            if (Peek is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                var op = _tokens[_at++];
                var r = Concat();
                left = s => JinjaValues.Compare(op, l(s), r(s));
            }
            else if (Peek == "in" || (Peek == "not" && _at + 1 < _tokens.Count && _tokens[_at + 1] == "in"))
            {
                bool negate = Accept("not");
                Expect("in");
                var r = Concat();
                left = s => JinjaValues.Contains(r(s), l(s)) != negate;
            }
            else if (Accept("is"))
            {
                bool negate = Accept("not");
                var test = _tokens[_at++];
                JinjaExpression? argument = test is "equalto" or "sameas" ? Concat() : null;
                left = s => JinjaValues.Test(test, l(s), argument?.Invoke(s)) != negate;
            }
            else
            {
                return left;
            }
        }
    }

    private JinjaExpression Concat()
    {
        var left = Additive();
        while (Accept("~"))
        {
            var (l, r) = (left, Additive());
            left = s => JinjaValues.Concat(JinjaValues.Render(l(s)), JinjaValues.Render(r(s)));
        }
        return left;
    }

    private JinjaExpression Additive()
    {
        var left = Multiplicative();
        while (Peek is "+" or "-")
        {
            var op = _tokens[_at++];
            var (l, r) = (left, Multiplicative());
            left = s => JinjaValues.Arithmetic(op, l(s), r(s));
        }
        return left;
    }

    private JinjaExpression Multiplicative()
    {
        var left = Unary();
        while (Peek is "*" or "/" or "%" or "//")
        {
            var op = _tokens[_at++];
            var (l, r) = (left, Unary());
            left = s => JinjaValues.Arithmetic(op, l(s), r(s));
        }
        return left;
    }

    private JinjaExpression Unary()
    {
        if (Accept("-"))
        {
            var inner = Nested(Unary);
            return s => JinjaValues.Arithmetic("-", 0L, inner(s));
        }
        return Postfix(Primary());
    }

    private JinjaExpression Postfix(JinjaExpression value)
    {
        while (true)
        {
            var target = value;
            if (Accept("."))
            {
                var name = _tokens[_at++];
                if (Accept("("))
                {
                    var args = Arguments(")");
                    value = s => JinjaValues.CallMethod(target(s), name, args.Select(a => a(s)).ToList());
                }
                else
                {
                    value = s => JinjaValues.Member(target(s), name);
                }
            }
            else if (Accept("["))
            {
                JinjaExpression? start = Peek == ":" ? null : Ternary();
                if (Accept(":"))
                {
                    JinjaExpression? stop = Peek == "]" ? null : Ternary();
                    Expect("]");
                    value = s => JinjaValues.Slice(target(s), start?.Invoke(s), stop?.Invoke(s));
                }
                else
                {
                    Expect("]");
                    value = s => JinjaValues.Member(target(s), start!(s));
                }
            }
            else if (Accept("("))
            {
                var args = Arguments(")");
                value = s => JinjaValues.Call(target(s), args.Select(a => a(s)).ToList());
            }
            else if (Accept("|"))
            {
                var filter = _tokens[_at++];
                var args = Accept("(") ? Arguments(")") : [];
                value = s => JinjaValues.Filter(filter, target(s), args.Select(a => a(s)).ToList());
            }
            else
            {
                return value;
            }
        }
    }

    private List<JinjaExpression> Arguments(string close)
    {
        var args = new List<JinjaExpression>();
        while (!Accept(close))
        {
            // Keyword arguments (e.g. tojson(indent=2)) are accepted and ignored by name.
            if (_at + 1 < _tokens.Count && _tokens[_at + 1] == "=" && char.IsLetter(_tokens[_at][0]))
                _at += 2;
            args.Add(Ternary());
            Accept(",");
        }
        return args;
    }

    private JinjaExpression Primary()
    {
        var token = Peek ?? throw new MirageException("Chat template: an expression ends too early.");
        _at++;
        if (token == "(")
        {
            var inner = Ternary();
            Expect(")");
            return inner;
        }
        if (token == "[")
        {
            var items = Arguments("]");
            return s => items.Select(i => i(s)).ToList();
        }
        if (token == "{")
        {
            var entries = new List<(JinjaExpression Key, JinjaExpression Value)>();
            while (!Accept("}"))
            {
                var key = Ternary();
                Expect(":");
                entries.Add((key, Ternary()));
                Accept(",");
            }
            return s =>
            {
                // A repeated key keeps its last value, as in Python.
                var dictionary = new Dictionary<string, object?>();
                foreach (var (key, value) in entries)
                    dictionary[JinjaValues.Render(key(s))] = value(s);
                return dictionary;
            };
        }
        if (token[0] is '"' or '\'')
        {
            var literal = Unescape(token[1..^1]);
            return _ => literal;
        }
        if (char.IsDigit(token[0]))
        {
            // Cast first: the conditional operator would otherwise widen the long to a double.
            object number = token.Contains('.') ? (object)double.Parse(token, CultureInfo.InvariantCulture) : long.Parse(token, CultureInfo.InvariantCulture);
            return _ => number;
        }
        return token switch
        {
            "true" or "True" => _ => true,
            "false" or "False" => _ => false,
            "none" or "None" => _ => null,
            _ => s => s.Get(token),
        };
    }

    private static string Unescape(string text)
    {
        var result = new StringBuilder();
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] != '\\' || i + 1 == text.Length)
            {
                result.Append(text[i]);
                continue;
            }
            char next = text[++i];
            result.Append(next switch { 'n' => '\n', 't' => '\t', 'r' => '\r', _ => next });
        }
        return result.ToString();
    }

    private static List<string> Tokenize(string source)
    {
        var tokens = new List<string>();
        int i = 0;
        while (i < source.Length)
        {
            char c = source[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }
            int start = i;
            if (c is '"' or '\'')
            {
                i++;
                while (i < source.Length && source[i] != c)
                    i += source[i] == '\\' ? 2 : 1;
                i++;
            }
            else if (char.IsLetter(c) || c == '_')
            {
                while (i < source.Length && (char.IsLetterOrDigit(source[i]) || source[i] == '_'))
                    i++;
            }
            else if (char.IsDigit(c))
            {
                while (i < source.Length && (char.IsDigit(source[i]) || source[i] == '.'))
                    i++;
            }
            else
            {
                var two = i + 1 < source.Length ? source.Substring(i, 2) : "";
                i += two is "==" or "!=" or "<=" or ">=" or "//" ? 2 : 1;
            }
            tokens.Add(source[start..Math.Min(i, source.Length)]);
            if (tokens.Count > JinjaLimits.MaxExpressionTokens)
                throw JinjaLimits.Exceeded($"an expression has more than {JinjaLimits.MaxExpressionTokens:N0} tokens");
        }
        return tokens;
    }
}
