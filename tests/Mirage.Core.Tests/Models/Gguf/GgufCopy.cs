using Mirage.Core.Models.Gguf;

namespace Mirage.Core.Tests.Models.Gguf;

/// <summary>Copies of GGUF files that tests compare against.</summary>
internal static class GgufCopy
{
    /// <summary>
    /// <paramref name="source"/> with every tensor dequantized to F32 (the same weights, no block
    /// types), and only the metadata keys <paramref name="keepKey"/> accepts (all by default), with
    /// <paramref name="replace"/>'s values written over those of the same keys, and <paramref name="extra"/> tensors after the file's.
    /// </summary>
    public static string Dequantized(string source, string destination, Func<string, bool>? keepKey = null, IReadOnlyDictionary<string, object>? replace = null,
        IEnumerable<GgufTensor>? extra = null)
    {
        static object Plain(object value) => value switch
        {
            long l and >= 0 and <= uint.MaxValue => (uint)l,
            double d => (float)d,
            object[] items when items.All(i => i is string) => items.Cast<string>().ToArray(),
            object[] items when items.All(i => i is long) => items.Select(i => (int)(long)i).ToArray(),
            object[] items => items.Select(i => (float)Convert.ToDouble(i, System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
            _ => value,
        };
        using var file = GgufFile.Open(source);
        GgufWriter.Write(destination, file.Metadata.Where(p => keepKey?.Invoke(p.Key) ?? true)
                .Select(p => new KeyValuePair<string, object>(p.Key, replace?.GetValueOrDefault(p.Key) ?? Plain(p.Value))),
            [.. file.Tensors.Select(t => new GgufTensor(t.Name, file.Dequantize(t), t.Shape, GgufType.F32)), .. extra ?? []]);
        return destination;
    }
}
