using System.Collections;
using System.Globalization;
using System.Text.Json;

namespace Mirage.Core.Tokenization.Jinja;

/// <summary>Jinja's runtime semantics over .NET values (string, long, double, bool, null, lists, dictionaries).</summary>
internal static class JinjaValues
{
    public static bool Truthy(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        string s => s.Length > 0,
        long l => l != 0,
        double d => d != 0,
        ICollection c => c.Count > 0,
        _ => true,
    };

    public static string Render(object? value) => value switch
    {
        null => "None",
        Undefined => "",
        bool b => b ? "True" : "False",
        double d => d.ToString(CultureInfo.InvariantCulture),
        string s => s,
        IDictionary or IList => ToJson(value),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    public static object? Member(object? target, object? key)
    {
        switch (target)
        {
            case IDictionary<string, object?> dictionary:
                return dictionary.TryGetValue(Render(key), out var value) ? value : Undefined.Instance;
            case IList list when key is long index:
                int i = (int)(index < 0 ? list.Count + index : index);
                return i >= 0 && i < list.Count ? list[i] : Undefined.Instance;
            case string text when key is long index:
                int j = (int)(index < 0 ? text.Length + index : index);
                return j >= 0 && j < text.Length ? text[j].ToString() : Undefined.Instance;
            default:
                return Undefined.Instance;
        }
    }

    public static object? Slice(object? target, object? start, object? stop)
    {
        int Count(int length, object? bound, int fallback) => bound is long b ? (int)Math.Clamp(b < 0 ? length + b : b, 0, length) : fallback;
        return target switch
        {
            string s => s[Count(s.Length, start, 0)..Math.Max(Count(s.Length, start, 0), Count(s.Length, stop, s.Length))],
            IList list => list.Cast<object?>().Skip(Count(list.Count, start, 0)).Take(Math.Max(0, Count(list.Count, stop, list.Count) - Count(list.Count, start, 0))).ToList(),
            _ => Undefined.Instance,
        };
    }

    public static object? Call(object? target, List<object?> args) => target switch
    {
        Func<List<object?>, object?> function => function(args),
        _ => throw new MirageException("Chat template: called something that is not a function."),
    };

    public static object? CallMethod(object? target, string name, List<object?> args)
    {
        string Arg(int i) => Render(args[i]);
        switch (target)
        {
            case string s:
                return name switch
                {
                    "strip" => args.Count > 0 ? s.Trim(Arg(0).ToCharArray()) : s.Trim(),
                    "lstrip" => args.Count > 0 ? s.TrimStart(Arg(0).ToCharArray()) : s.TrimStart(),
                    "rstrip" => args.Count > 0 ? s.TrimEnd(Arg(0).ToCharArray()) : s.TrimEnd(),
                    "startswith" => s.StartsWith(Arg(0), StringComparison.Ordinal),
                    "endswith" => s.EndsWith(Arg(0), StringComparison.Ordinal),
                    "upper" => s.ToUpperInvariant(),
                    "lower" => s.ToLowerInvariant(),
                    "title" => CultureInfo.InvariantCulture.TextInfo.ToTitleCase(s),
                    "replace" => s.Replace(Arg(0), Arg(1)),
                    "split" => (args.Count > 0 ? s.Split(Arg(0)) : s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).Cast<object?>().ToList(),
                    _ => throw new MirageException($"Chat template: strings have no method '{name}' here."),
                };
            case IDictionary<string, object?> dictionary:
                return name switch
                {
                    "items" => dictionary.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList(),
                    "keys" => dictionary.Keys.Cast<object?>().ToList(),
                    "values" => dictionary.Values.ToList(),
                    "get" => dictionary.TryGetValue(Arg(0), out var v) ? v : args.Count > 1 ? args[1] : null,
                    _ => throw new MirageException($"Chat template: mappings have no method '{name}' here."),
                };
            default:
                throw new MirageException($"Chat template: cannot call '{name}' on {Render(target)}.");
        }
    }

    public static object? Filter(string name, object? value, List<object?> args) => name switch
    {
        "trim" => Render(value).Trim(),
        "length" or "count" => value switch { string s => (long)s.Length, ICollection c => (long)c.Count, _ => 0L },
        "upper" => Render(value).ToUpperInvariant(),
        "lower" => Render(value).ToLowerInvariant(),
        "string" => Render(value),
        "tojson" => ToJson(value),
        "first" => value is IList { Count: > 0 } l ? l[0] : Undefined.Instance,
        "last" => value is IList { Count: > 0 } l ? l[^1] : Undefined.Instance,
        "default" or "d" => value is Undefined or null ? (args.Count > 0 ? args[0] : "") : value,
        "join" => value is IEnumerable e and not string ? string.Join(args.Count > 0 ? Render(args[0]) : "", e.Cast<object?>().Select(Render)) : Render(value),
        "int" => value is string s && long.TryParse(s, out var parsed) ? parsed : value is double d ? (long)d : value,
        "list" => value is IEnumerable e and not string ? e.Cast<object?>().ToList() : new List<object?> { value },
        _ => throw new MirageException($"Chat template: the filter '{name}' is not supported."),
    };

    public static bool Test(string name, object? value, object? argument) => name switch
    {
        "defined" => value is not Undefined,
        "undefined" => value is Undefined,
        "none" => value is null,
        "string" => value is string,
        "number" => value is long or double,
        "boolean" => value is bool,
        "mapping" => value is IDictionary,
        "iterable" or "sequence" => value is IEnumerable,
        "true" => value is true,
        "false" => value is false,
        "equalto" or "sameas" => Compare("==", value, argument),
        "odd" => value is long l && l % 2 != 0,
        "even" => value is long l && l % 2 == 0,
        _ => throw new MirageException($"Chat template: the test '{name}' is not supported."),
    };

    public static bool Contains(object? container, object? item) => container switch
    {
        string s => s.Contains(Render(item), StringComparison.Ordinal),
        IDictionary<string, object?> d => d.ContainsKey(Render(item)),
        IList list => list.Cast<object?>().Any(x => Compare("==", x, item)),
        _ => false,
    };

    public static bool Compare(string op, object? left, object? right)
    {
        if (left is long or double && right is long or double)
        {
            double a = Convert.ToDouble(left, CultureInfo.InvariantCulture), b = Convert.ToDouble(right, CultureInfo.InvariantCulture);
            return op switch { "==" => a == b, "!=" => a != b, "<" => a < b, ">" => a > b, "<=" => a <= b, _ => a >= b };
        }
        if (op is "==" or "!=")
        {
            bool equal = left is Undefined && right is Undefined || Equals(left, right) || (left is string or bool && right is string or bool && Render(left) == Render(right) && left.GetType() == right!.GetType());
            return op == "==" ? equal : !equal;
        }
        int order = string.CompareOrdinal(Render(left), Render(right));
        return op switch { "<" => order < 0, ">" => order > 0, "<=" => order <= 0, _ => order >= 0 };
    }

    public static object? Arithmetic(string op, object? left, object? right)
    {
        if (op == "+" && (left is string || right is string))
            return Render(left) + Render(right);
        if (op == "+" && left is IList a && right is IList b)
            return a.Cast<object?>().Concat(b.Cast<object?>()).ToList();
        if (left is long x && right is long y)
            return op switch { "+" => x + y, "-" => x - y, "*" => x * y, "%" => x % y, "//" => x / y, _ => (double)x / y };
        double p = Convert.ToDouble(left is Undefined ? 0 : left, CultureInfo.InvariantCulture), q = Convert.ToDouble(right is Undefined ? 0 : right, CultureInfo.InvariantCulture);
        return op switch { "+" => p + q, "-" => p - q, "*" => p * q, "%" => p % q, "//" => Math.Floor(p / q), _ => p / q };
    }

    private static string ToJson(object? value) => JsonSerializer.Serialize(Plain(value));

    private static object? Plain(object? value) => value switch
    {
        Undefined => null,
        IDictionary<string, object?> d => d.ToDictionary(kv => kv.Key, kv => Plain(kv.Value)),
        IList l => l.Cast<object?>().Select(Plain).ToList(),
        _ => value,
    };
}
