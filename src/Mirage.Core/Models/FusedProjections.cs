using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// Phi-3's checkpoint layout: Q, K and V stored as one <c>qkv_proj</c> (rows q, then k, then v) and
/// the MLP's gate and up as one <c>gate_up_proj</c> (gate rows first). The forward pass is the same
/// as Llama's, so the fusion is a fact of the file: loading splits the fused tensors into the
/// runtime's names (<see cref="Split"/>), writing joins them again (<see cref="Fuse"/>).
/// </summary>
public static partial class FusedProjections
{
    [GeneratedRegex(@"^(.*\.)(self_attn\.qkv_proj|mlp\.gate_up_proj)\.(weight|bias)$")]
    private static partial Regex Fused();

    // The runtime's tensors a fused tensor holds, with their row counts, in order.
    private static (string Name, long Rows)[] Parts(string prefix, string kind, string suffix, ModelConfig c) => kind == "self_attn.qkv_proj"
        ? [($"{prefix}self_attn.q_proj.{suffix}", (long)c.NumHeads * c.HeadDim), ($"{prefix}self_attn.k_proj.{suffix}", (long)c.NumKeyValueHeads * c.HeadDim), ($"{prefix}self_attn.v_proj.{suffix}", (long)c.NumKeyValueHeads * c.HeadDim)]
        : [($"{prefix}mlp.gate_proj.{suffix}", c.IntermediateSize), ($"{prefix}mlp.up_proj.{suffix}", c.IntermediateSize)];

    /// <summary>The tensors of <paramref name="source"/> with every fused tensor split into its parts (others unchanged).</summary>
    public static ICheckpointTensors Split(ICheckpointTensors source, ModelConfig config) => new SplitTensors(source, config);

    /// <summary>Named tensors with each set of parts joined into its fused tensor (for writing a Phi-3 checkpoint).</summary>
    public static List<KeyValuePair<string, Tensor>> Fuse(IReadOnlyList<KeyValuePair<string, Tensor>> tensors, ModelConfig config)
    {
        var byName = tensors.ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal);
        var fused = new List<KeyValuePair<string, Tensor>>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, _) in tensors)
        {
            foreach (var kind in new[] { "self_attn.qkv_proj", "mlp.gate_up_proj" })
            {
                var first = kind == "self_attn.qkv_proj" ? ".self_attn.q_proj." : ".mlp.gate_proj.";
                int at = name.IndexOf(first, StringComparison.Ordinal);
                if (at < 0)
                    continue;
                var (prefix, suffix) = (name[..(at + 1)], name[(at + first.Length)..]);
                var parts = Parts(prefix, kind, suffix, config).Select(p => p.Name).ToList();
                fused.Add(new($"{prefix}{kind}.{suffix}", cat(parts.Select(p => byName[p]).ToArray(), 0)));
                used.UnionWith(parts);
            }
        }
        return [.. tensors.Where(t => !used.Contains(t.Key)), .. fused];
    }

    private sealed class SplitTensors : ICheckpointTensors
    {
        private readonly ICheckpointTensors _source;
        private readonly Dictionary<string, (string Fused, long Start, long Rows)> _parts = new(StringComparer.Ordinal);

        public SplitTensors(ICheckpointTensors source, ModelConfig config)
        {
            _source = source;
            var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
            foreach (var (name, shape) in source.Shapes)
            {
                var m = Fused().Match(name);
                if (!m.Success)
                {
                    shapes[name] = shape;
                    continue;
                }
                var parts = Parts(m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value, config);
                if (parts.Sum(p => p.Rows) != shape[0])
                    throw new InvalidCheckpointException($"'{source.Path}', tensor '{name}': {shape[0]} rows, but the config's parts need {parts.Sum(p => p.Rows)} ({string.Join(" + ", parts.Select(p => p.Rows))}).");
                long start = 0;
                foreach (var (part, rows) in parts)
                {
                    _parts[part] = (name, start, rows);
                    shapes[part] = [rows, .. shape[1..]];
                    start += rows;
                }
            }
            Shapes = shapes;
        }

        public string Path => _source.Path;

        public IReadOnlyDictionary<string, long[]> Shapes { get; }

        public Tensor Read(string name, ScalarType? dtype = null, Device? device = null)
        {
            if (!_parts.TryGetValue(name, out var part))
                return _source.Read(name, dtype, device);
            using var scope = NewDisposeScope();
            using var whole = _source.Read(part.Fused, dtype, device);
            return whole.narrow(0, part.Start, part.Rows).contiguous().MoveToOuterDisposeScope();
        }

        public void Dispose() => _source.Dispose();
    }
}
