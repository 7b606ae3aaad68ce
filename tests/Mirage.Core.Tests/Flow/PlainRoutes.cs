using Mirage.Core.Models;
using Mirage.Core.Models.Safetensors;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Flow;

/// <summary>
/// An independent routes graph for a small Llama checkpoint, in plain float64 loops with no tensor
/// library in the computation: the forward pass from the safetensors weights, LM-TT's contributions,
/// its full graph over every layer and token (self-attention edge and residual merged), and the
/// depth-first search from the output along edges above the threshold.
/// </summary>
internal static class PlainRoutes
{
    /// <summary>One layer of the plain pass: its input, the attention parts [to][from][head] (each [C]), and the residual after each block.</summary>
    public sealed record Layer(double[][] Input, double[][][][] Parts, double[][] Mid, double[][] Ffn, double[][] Post, Func<double[], double[]> FfnBlock);

    /// <summary>The plain float64 forward pass over <paramref name="ids"/>, layer by layer.</summary>
    public static List<Layer> Forward(string directory, ModelConfig config, int[] ids)
    {
        using var file = SafetensorsFile.Open(Path.Combine(directory, "model.safetensors"));
        double[][] W(string name) => Matrix(file.Read(name, ScalarType.Float64));
        double[] V(string name) => file.Read(name, ScalarType.Float64).data<double>().ToArray();

        int t = ids.Length, c = config.HiddenSize, h = config.NumHeads, kv = config.NumKeyValueHeads, d = c / h;
        var embed = W("model.embed_tokens.weight");
        var x = ids.Select(i => (double[])embed[i].Clone()).ToArray();
        var layers = new List<Layer>();
        for (int l = 0; l < config.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            var normed = x.Select(r => RmsNorm(r, V(p + "input_layernorm.weight"), config.RmsNormEps)).ToArray();
            var q = normed.Select((r, pos) => Rope(MatVec(W(p + "self_attn.q_proj.weight"), r), pos, h, d, config.RopeTheta)).ToArray();
            var k = normed.Select((r, pos) => Rope(MatVec(W(p + "self_attn.k_proj.weight"), r), pos, kv, d, config.RopeTheta)).ToArray();
            var v = normed.Select(r => MatVec(W(p + "self_attn.v_proj.weight"), r)).ToArray();
            var wo = W(p + "self_attn.o_proj.weight");                                   // [C, H*D]

            // parts[to][from][head] = A[head, to, from] * (v_from of the head's kv group) W_O^head
            var parts = new double[t][][][];
            for (int to = 0; to < t; to++)
            {
                parts[to] = new double[to + 1][][];
                for (int s = 0; s <= to; s++)
                    parts[to][s] = new double[h][];
                for (int head = 0; head < h; head++)
                {
                    int group = head / (h / kv);
                    var scores = new double[to + 1];
                    for (int s = 0; s <= to; s++)
                    {
                        for (int i = 0; i < d; i++)
                            scores[s] += q[to][head * d + i] * k[s][group * d + i];
                        scores[s] /= Math.Sqrt(d);
                    }
                    double max = scores.Max(), sum = scores.Sum(z => Math.Exp(z - max));
                    for (int s = 0; s <= to; s++)
                    {
                        double a = Math.Exp(scores[s] - max) / sum;
                        var part = new double[c];
                        for (int o = 0; o < c; o++)
                        {
                            for (int i = 0; i < d; i++)
                                part[o] += wo[o][head * d + i] * v[s][group * d + i];
                            part[o] *= a;
                        }
                        parts[to][s][head] = part;
                    }
                }
            }
            var mid = new double[t][];
            for (int to = 0; to < t; to++)
            {
                mid[to] = (double[])x[to].Clone();
                foreach (var part in parts[to].SelectMany(byHead => byHead))
                    for (int o = 0; o < c; o++)
                        mid[to][o] += part[o];
            }
            var (norm, gate, up, down) = (V(p + "post_attention_layernorm.weight"), W(p + "mlp.gate_proj.weight"), W(p + "mlp.up_proj.weight"), W(p + "mlp.down_proj.weight"));
            double[] FfnBlock(double[] r) => Mlp(RmsNorm(r, norm, config.RmsNormEps), gate, up, down);
            var ffn = mid.Select(FfnBlock).ToArray();
            var post = mid.Select((r, i) => r.Zip(ffn[i], (a, b) => a + b).ToArray()).ToArray();
            layers.Add(new Layer(x, parts, mid, ffn, post, FfnBlock));
            x = post;
        }
        return layers;
    }

    /// <summary>
    /// Value zeroing at one layer and target, the direct way: the attention output at the target
    /// recomputed with one source's value taken out, through the FFN block, against the clean output.
    /// </summary>
    public static double[] ValueZeroing(string directory, ModelConfig config, int[] ids, int layer, int position)
    {
        var clean = Forward(directory, config, ids)[layer];
        var scores = new double[ids.Length];
        for (int j = 0; j <= position; j++)
        {
            var mid = (double[])clean.Input[position].Clone();
            for (int s = 0; s <= position; s++)
            {
                if (s == j)
                    continue;
                foreach (var part in clean.Parts[position][s])
                    for (int o = 0; o < mid.Length; o++)
                        mid[o] += part[o];
            }
            var ffn = clean.FfnBlock(mid);
            var zeroed = mid.Zip(ffn, (a, b) => a + b).ToArray();
            var whole = clean.Post[position];
            double dot = zeroed.Zip(whole, (a, b) => a * b).Sum(), norms = Math.Sqrt(zeroed.Sum(z => z * z)) * Math.Sqrt(whole.Sum(z => z * z));
            scores[j] = 1 - dot / norms;
        }
        double total = scores.Sum();
        return [.. scores.Select(z => total == 0 ? z : z / total)];
    }

    public static (Dictionary<(string From, string To), double> Edges, double[] Shares) Trace(string directory, ModelConfig config, int[] ids, int from, double threshold)
    {
        int t = ids.Length, h = config.NumHeads;
        var full = new Dictionary<(string, string), double>();
        void Add(string u, string v, double w) => full[(u, v)] = full.GetValueOrDefault((u, v)) + w;

        foreach (var (layer, l) in Forward(directory, config, ids).Select((layer, l) => (layer, l)))
        {
            var (x, parts, mid, ffn, post) = (layer.Input, layer.Parts, layer.Mid, layer.Ffn, layer.Post);
            for (int to = 0; to < t; to++)
            {
                var flat = parts[to].SelectMany(byHead => byHead).ToList();            // [from * H + head]
                var shares = Renormalize(Proximities([.. flat, x[to]], mid[to]), threshold);
                string below(int s) => l == 0 ? $"X0_{s}" : $"I{l - 1}_{s}";
                for (int s = 0; s <= to; s++)
                    Add(below(s), $"A{l}_{to}", Enumerable.Range(0, h).Sum(head => shares[s * h + head]));
                Add(below(to), $"A{l}_{to}", shares[^1]);
                var ffnShares = Renormalize(Proximities([ffn[to], mid[to]], post[to]), threshold);
                Add($"A{l}_{to}", $"M{l}_{to}", ffnShares[0]);
                Add($"M{l}_{to}", $"I{l}_{to}", ffnShares[0]);
                Add($"A{l}_{to}", $"I{l}_{to}", ffnShares[1]);
            }
        }

        // The edges reachable backwards from the output along weights above the threshold.
        var kept = new Dictionary<(string From, string To), double>();
        var stack = new Stack<string>([$"I{config.NumLayers - 1}_{from}"]);
        var seen = new HashSet<string>();
        while (stack.TryPop(out var node))
        {
            if (!seen.Add(node))
                continue;
            foreach (var ((u, v), w) in full.Where(e => e.Key.Item2 == node && e.Value > threshold))
            {
                kept[(u, v)] = w;
                stack.Push(u);
            }
        }

        // Flow: 1 at the output, passed down each kept edge by its weight (the FFN path ends at the same A node).
        var flow = new Dictionary<string, double> { [$"I{config.NumLayers - 1}_{from}"] = 1 };
        for (int l = config.NumLayers - 1; l >= 0; l--)
        {
            for (int to = 0; to < t; to++)
            {
                double atI = flow.GetValueOrDefault($"I{l}_{to}");
                foreach (var ((u, v), w) in kept.Where(e => e.Key.To == $"I{l}_{to}"))
                    flow[u.StartsWith('M') ? $"A{l}_{to}" : u] = flow.GetValueOrDefault(u.StartsWith('M') ? $"A{l}_{to}" : u) + atI * w;
            }
            for (int to = 0; to < t; to++)
            {
                double atA = flow.GetValueOrDefault($"A{l}_{to}");
                foreach (var ((u, _), w) in kept.Where(e => e.Key.To == $"A{l}_{to}"))
                    flow[u] = flow.GetValueOrDefault(u) + atA * w;
            }
        }
        return (kept, [.. Enumerable.Range(0, t).Select(s => flow.GetValueOrDefault($"X0_{s}"))]);
    }

    private static double[] Proximities(List<double[]> parts, double[] whole)
    {
        double norm = whole.Sum(Math.Abs);
        var proximity = parts.Select(part => Math.Max(1e-5, norm - whole.Zip(part, (a, b) => Math.Abs(a - b)).Sum())).ToArray();
        double total = proximity.Sum();
        return [.. proximity.Select(z => z / total)];
    }

    private static double[] Renormalize(double[] shares, double threshold)
    {
        var kept = shares.Select(z => z > threshold ? z : 0).ToArray();
        double total = kept.Sum();
        return [.. kept.Select(z => z / total)];
    }

    private static double[] RmsNorm(double[] x, double[] weight, double eps)
    {
        double scale = 1 / Math.Sqrt(x.Sum(z => z * z) / x.Length + eps);
        return [.. x.Select((z, i) => z * scale * weight[i])];
    }

    // Rotary embedding, rotate-half layout: dimension i pairs with i + D/2 at frequency theta^(-2i/D).
    private static double[] Rope(double[] x, int position, int heads, int d, double theta)
    {
        var result = new double[x.Length];
        for (int head = 0; head < heads; head++)
        for (int i = 0; i < d / 2; i++)
        {
            double angle = position * Math.Pow(theta, -2.0 * i / d), cos = Math.Cos(angle), sin = Math.Sin(angle);
            double a = x[head * d + i], b = x[head * d + i + d / 2];
            result[head * d + i] = a * cos - b * sin;
            result[head * d + i + d / 2] = b * cos + a * sin;
        }
        return result;
    }

    private static double[] Mlp(double[] x, double[][] gate, double[][] up, double[][] down)
    {
        var g = MatVec(gate, x);
        var u = MatVec(up, x);
        return MatVec(down, [.. g.Select((z, i) => z / (1 + Math.Exp(-z)) * u[i])]);
    }

    private static double[] MatVec(double[][] w, double[] x) => [.. w.Select(row => row.Zip(x, (a, b) => a * b).Sum())];

    private static double[][] Matrix(Tensor t)
    {
        var flat = t.data<double>().ToArray();
        int columns = (int)t.shape[1];
        return [.. Enumerable.Range(0, (int)t.shape[0]).Select(r => flat[(r * columns)..((r + 1) * columns)])];
    }
}
