using Mirage.Core.Attribution;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Pecore;
using Mirage.Eval.Data;
using static TorchSharp.torch;

namespace Mirage.Eval.Harness;

/// <summary>One way of reading attention as citations, and how it scored.</summary>
public sealed record AttentionVariant(string Name, PrecisionRecall Exact, int Abstained);

/// <summary>
/// Why the attention citer scores near chance: the same attention weights read several ways. Each
/// sentence cites the passage its answer tokens attend to most, with attention averaged over every
/// layer and head (the citer), or one layer, or one head; summed over a passage's tokens or
/// averaged (so long passages do not win by length) or its peak (a copying head attends to the one
/// token it copies); over all the sentence's tokens or only the
/// CTI-selected ones (abstaining when there are none, as MIRAGE does). One forward pass and the
/// CTI passes per item.
/// </summary>
public static class AttentionProbe
{
    /// <summary>Exact precision/recall of every variant on <paramref name="items"/> (which need gold).</summary>
    public static IReadOnlyList<AttentionVariant> Run(LanguageModel model, IReadOnlyList<AlceItem> items, PromptTemplate template)
    {
        var pecore = new PecoreAnalyzer(AttributionEngine.CreateDefault());
        int layers = model.Config.NumLayers, heads = model.Config.NumHeads;
        // Variant name -> per item (made, correct, gold) counts.
        var counts = new Dictionary<string, (int Made, int Correct, int Gold, int Abstained)>();
        void Count(string name, AlceItem item, IReadOnlyList<int[]> cited)
        {
            var (made, correct, gold, abstained) = counts.GetValueOrDefault(name);
            for (int s = 0; s < cited.Count; s++)
            {
                made += cited[s].Length;
                correct += cited[s].Count(item.GoldCitations![s].Contains);
                gold += item.GoldCitations[s].Length;
                abstained += cited[s].Length == 0 ? 1 : 0;
            }
            counts[name] = (made, correct, gold, abstained);
        }

        foreach (var item in items)
        {
            var input = PreparedCitation.Prepare(model, item.Question, item.ToPassages(), item.Output, template);
            var cti = pecore.AnalyzeBatch(model, [new PecoreAnswer(input.PromptIds, input.NoContextIds, input.AnswerIds, input.Eligible, new PecoreOptions(), RunCci: false)])[0];
            var (mass, peak) = PassageAttention(model, input); // [layer, head, answer token, passage]: summed over the passage's tokens, and its largest
            var lengths = input.Passages.Select(p => (double)(p.TokenEnd - p.TokenStart)).ToArray();
            int sentences = input.Sentences.Count, passages = input.Passages.Count;

            IReadOnlyList<int[]> Cite(Func<int, int, double> weight, bool gated, bool perToken) => Enumerable.Range(0, sentences).Select(s =>
            {
                var tokens = input.TokensOf(s).Where(t => !gated || cti.Selected[t]).ToList();
                if (tokens.Count == 0)
                    return Array.Empty<int>();
                return new[] { Enumerable.Range(0, passages).MaxBy(p => tokens.Sum(t => weight(t, p)) / (perToken ? lengths[p] : 1)) };
            }).ToList();
            double Mean(int t, int p, IEnumerable<(int Layer, int Head)> chosen) => chosen.Average(c => mass[c.Layer, c.Head, t, p]);

            var all = (from l in Enumerable.Range(0, layers) from h in Enumerable.Range(0, heads) select (l, h)).ToList();
            foreach (var gated in new[] { false, true })
            {
                string tokens = gated ? "CTI-selected tokens" : "all tokens";
                Count($"mean of all heads, summed, {tokens}", item, Cite((t, p) => Mean(t, p, all), gated, perToken: false));
                Count($"mean of all heads, per passage token, {tokens}", item, Cite((t, p) => Mean(t, p, all), gated, perToken: true));
                Count($"mean of all heads, peak token, {tokens}", item, Cite((t, p) => all.Average(c => peak[c.l, c.h, t, p]), gated, perToken: false));
                for (int l = 0; l < layers; l++)
                {
                    int layer = l;
                    Count($"layer {layer}, summed, {tokens}", item, Cite((t, p) => Mean(t, p, all.Where(c => c.l == layer)), gated, perToken: false));
                    for (int h = 0; h < heads; h++)
                    {
                        int head = h;
                        Count($"layer {layer} head {head}, summed, {tokens}", item, Cite((t, p) => mass[layer, head, t, p], gated, perToken: false));
                        Count($"layer {layer} head {head}, peak token, {tokens}", item, Cite((t, p) => peak[layer, head, t, p], gated, perToken: false));
                    }
                }
            }
        }
        return counts.Select(c => new AttentionVariant(c.Key,
                new PrecisionRecall(c.Value.Made == 0 ? 0 : 100.0 * c.Value.Correct / c.Value.Made, c.Value.Gold == 0 ? 0 : 100.0 * c.Value.Correct / c.Value.Gold), c.Value.Abstained))
            .ToList();
    }

    // One forward pass with attention weights; per layer, head, answer token and passage: the
    // attention the position predicting that token pays to the passage's tokens, in all and at most.
    private static (double[,,,] Mass, double[,,,] Peak) PassageAttention(LanguageModel model, PreparedCitation input)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = tensor(input.SequenceIds.Select(i => (long)i).ToArray(), device: model.Device).unsqueeze(0);
        using var output = model.Forward(new ForwardRequest(model.Embed(ids), TorchScalars.Range(ids.shape[1], model.Device).unsqueeze(0), LogitsFrom: (int)ids.shape[1] - 1, OutputAttentions: true));
        int layers = output.Attentions!.Count, heads = (int)output.Attentions[0].shape[1], answer = input.AnswerIds.Length, start = input.PromptIds.Length - 1;
        var mass = new double[layers, heads, answer, input.Passages.Count];
        var peak = new double[layers, heads, answer, input.Passages.Count];
        for (int l = 0; l < layers; l++)
        {
            var rows = output.Attentions[l][0].narrow(1, start, answer);                 // [H, A, S]
            foreach (var passage in input.Passages)
            {
                var block = rows.narrow(2, passage.TokenStart, passage.TokenEnd - passage.TokenStart);  // [H, A, P]
                var sums = block.sum(2).to(ScalarType.Float64).cpu().data<double>().ToArray();         // [H * A]
                var peaks = block.amax([2L]).to(ScalarType.Float64).cpu().data<double>().ToArray();
                for (int h = 0; h < heads; h++)
                    for (int t = 0; t < answer; t++)
                        (mass[l, h, t, passage.Index], peak[l, h, t, passage.Index]) = (sums[h * answer + t], peaks[h * answer + t]);
            }
        }
        return (mass, peak);
    }
}
