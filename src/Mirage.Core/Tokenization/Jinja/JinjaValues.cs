using System.Buffers;
using System.Collections;
using System.Globalization;
using System.Text;
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

    /// <summary>An integer argument (a whole double counts), or an error naming what came instead.</summary>
    public static long Integer(object? value) => value switch
    {
        long l => l,
        double d when d == Math.Floor(d) && Math.Abs(d) < 1e15 => (long)d,
        bool b => b ? 1 : 0,
        _ => throw new MirageException($"Chat template: expected an integer, got '{Render(value)}'."),
    };

    /// <summary><c>a ~ b</c> and string <c>+</c>, with the length checked before the string is built.</summary>
    public static string Concat(string left, string right)
    {
        JinjaLimits.CheckLength((long)left.Length + right.Length, "a string");
        return left + right;
    }

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
                    "replace" => Replace(s, Arg(0), Arg(1)),
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
        "join" => value is IEnumerable e and not string ? Join(e, args.Count > 0 ? Render(args[0]) : "") : Render(value),
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
            return Concat(Render(left), Render(right));
        if (op == "+" && left is IList a && right is IList b)
        {
            JinjaLimits.CheckLength((long)a.Count + b.Count, "a list");
            return a.Cast<object?>().Concat(b.Cast<object?>()).ToList();
        }
        if (op == "*" && (left is string || right is string))
        {
            var (text, times) = left is string t ? (t, Integer(right)) : ((string)right!, Integer(left));
            JinjaLimits.CheckLength(text.Length * Math.Max(0, Math.Min(times, JinjaLimits.MaxValueLength + 1L)), "a repeated string");
            return times <= 0 || text.Length == 0 ? "" : new StringBuilder(text.Length * (int)times).Insert(0, text, (int)times).ToString();
        }
        if (left is long x && right is long y)
            return op switch { "+" => x + y, "-" => x - y, "*" => x * y, "%" => x % y, "//" => x / y, _ => (double)x / y };
        double p = Convert.ToDouble(left is Undefined ? 0 : left, CultureInfo.InvariantCulture), q = Convert.ToDouble(right is Undefined ? 0 : right, CultureInfo.InvariantCulture);
        return op switch { "+" => p + q, "-" => p - q, "*" => p * q, "%" => p % q, "//" => Math.Floor(p / q), _ => p / q };
    }

    private static string Replace(string text, string old, string replacement)
    {
        if (old.Length > 0 && replacement.Length > old.Length)
            JinjaLimits.CheckLength(text.Length + (long)(text.Length / old.Length) * (replacement.Length - old.Length), "a replaced string");
        else if (old.Length == 0)
            JinjaLimits.CheckLength(text.Length + (text.Length + 1L) * replacement.Length, "a replaced string");
        return text.Replace(old, replacement);
    }

    private static string Join(IEnumerable items, string separator)
    {
        var joined = new StringBuilder();
        foreach (var item in items)
        {
            var piece = Render(item);
            JinjaLimits.CheckLength((long)joined.Length + separator.Length + piece.Length, "a joined string");
            if (joined.Length > 0)
                joined.Append(separator);
            joined.Append(piece);
        }
        return joined.ToString();
    }

    // Written by hand rather than by the serializer: a list holding itself twice, repeated, is
    // small in memory but exponential as text, so size and depth are checked as it is written.
    private static string ToJson(object? value)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
            WriteJson(writer, value, 0);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteJson(Utf8JsonWriter writer, object? value, int depth)
    {
        if (depth > JinjaLimits.MaxExpressionNesting)
            throw JinjaLimits.Exceeded($"a value nests more than {JinjaLimits.MaxExpressionNesting} deep");
        JinjaLimits.CheckLength(writer.BytesCommitted + writer.BytesPending, "a value's JSON");
        switch (value)
        {
            case null or Undefined:
                writer.WriteNullValue();
                break;
            case bool b:
                writer.WriteBooleanValue(b);
                break;
            case long l:
                writer.WriteNumberValue(l);
                break;
            case double d when double.IsFinite(d):
                writer.WriteNumberValue(d);
                break;
            case IDictionary<string, object?> dictionary:
                writer.WriteStartObject();
                foreach (var (key, item) in dictionary)
                {
                    writer.WritePropertyName(key);
                    WriteJson(writer, item, depth + 1);
                }
                writer.WriteEndObject();
                break;
            case IList list:
                writer.WriteStartArray();
                foreach (var item in list)
                    WriteJson(writer, item, depth + 1);
                writer.WriteEndArray();
                break;
            default:
                writer.WriteStringValue(Render(value));
                break;
        }
    }
}
