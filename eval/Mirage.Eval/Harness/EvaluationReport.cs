using System.Globalization;
using System.Security;
using System.Text;

namespace Mirage.Eval.Harness;

/// <summary>Renders an <see cref="EvaluationSummary"/> as a Markdown report and an SVG chart.</summary>
public static class EvaluationReport
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
    private static readonly string[] Colors = ["#4e79a7", "#f28e2b", "#59a14f"];

    /// <summary>The report: what was run, a metrics table, the chart, the outcome breakdown and notes.</summary>
    public static string Markdown(EvaluationSummary summary)
    {
        var md = new StringBuilder();
        md.AppendLine("# Citation quality").AppendLine();
        var contextFree = summary.ContextFreeSentences is { } free ? $" ({free} need no passage)." : ".";
        md.AppendLine(Invariant, $"Data: `{summary.Data}`: {summary.Items} items, {summary.Sentences} answer sentences{contextFree}");
        md.AppendLine(Invariant, $"Judge for ALCE metrics: {summary.Judge ?? "none"}.").AppendLine();
        md.AppendLine("Reproduce:").AppendLine().AppendLine("```").AppendLine(summary.Command).AppendLine("```").AppendLine();

        md.AppendLine("| citer | exact precision | exact recall | exact F1 | ALCE precision | ALCE recall | ALCE F1 | seconds / item |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var c in summary.Citers)
        {
            md.AppendLine(Invariant, $"| {c.Name} | {Pct(c.Exact?.Precision)} | {Pct(c.Exact?.Recall)} | {Pct(c.Exact?.F1)} | "
                + $"{Pct(c.Alce?.Precision)} | {Pct(c.Alce?.Recall)} | {Pct(c.Alce?.F1)} | {c.SecondsPerItem.ToString("F3", Invariant)} |");
        }
        md.AppendLine().AppendLine("![precision, recall and F1 per citer](chart.svg)").AppendLine();

        if (summary.Citers.Any(c => c.Faithfulness is not null || c.Confusions is not null))
        {
            md.AppendLine("Faithfulness, measured on the model without gold, in nats over each cited sentence's tokens: *necessity* = how much removing "
                + "its cited passages lowers it; *sufficiency* = how it fares with only them (0: as with all passages); *win rate* = how often "
                + "removing the cited passages lowers it more than removing as many passages at random (docs/algorithms.md, section 5).");
            if (summary.Citers.Any(c => c.Confusions is not null))
                md.AppendLine().Append("*Confusions*: the generated sentences whose value the model took from another entity's passage, scored against that passage.");
            md.AppendLine().AppendLine();
            md.AppendLine("| citer | necessity win rate | mean necessity | mean sufficiency | cited sentences | confusions F1 (sentences) | seconds / item | generating / item |");
            md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var c in summary.Citers)
            {
                var f = c.Faithfulness;
                md.AppendLine(Invariant, $"| {c.Name} | {Pct(f?.NecessityWinRate)} | {Nats(f?.MeanNecessity)} | {Nats(f?.MeanSufficiency)} | {f?.Sentences.ToString(Invariant) ?? "n/a"} | "
                    + $"{(c.Confusions is { } x ? $"{Pct(x.F1)} ({x.Sentences})" : "n/a")} | {c.SecondsPerItem.ToString("F3", Invariant)} | "
                    + $"{(c.GenerationSecondsPerItem is { } g ? g.ToString("F3", Invariant) : "n/a")} |");
            }
            md.AppendLine().AppendLine("![necessity win rate per citer](faithfulness.svg)").AppendLine();
        }

        if (summary.Citers.All(c => c.Outcomes is not null))
        {
            var names = summary.Citers[0].Outcomes!.Keys.ToList();
            md.AppendLine("Per answer sentence, against gold provenance: *exact* = cited exactly the gold passages; *partial* = some gold and "
                + "something else or not all; *wrong* = only non-gold passages; *missed* = nothing cited though it came from a passage; "
                + "*spurious* = cited though it needs no passage; *abstained* = rightly cited nothing.").AppendLine();
            md.AppendLine("| citer | " + string.Join(" | ", names) + " |");
            md.AppendLine("|---|" + string.Concat(names.Select(_ => "---:|")));
            foreach (var c in summary.Citers)
                md.AppendLine($"| {c.Name} | " + string.Join(" | ", names.Select(n => c.Outcomes![n].ToString(Invariant))) + " |");
            md.AppendLine();
        }
        md.AppendLine("Exact metrics count (sentence, passage) pairs over the whole set against gold provenance. ALCE metrics follow "
            + "ALCE: recall averages over an item's sentences, precision over its citations (at most 3 per sentence), then both over items.");
        foreach (var note in summary.Notes)
            md.AppendLine().AppendLine(note);
        return md.ToString();
    }

    /// <summary>Grouped bars of precision, recall and F1 per citer (exact ones where there is gold, else ALCE's), with time per item.</summary>
    public static string Chart(EvaluationSummary summary)
    {
        bool exact = summary.Citers.All(c => c.Exact is not null);
        return Bars($"Citation {(exact ? "exact (gold)" : "ALCE")} precision / recall / F1 (%)", ["precision", "recall", "F1"], summary.Citers, c =>
        {
            var scores = exact ? c.Exact : c.Alce;
            return scores is null ? [0, 0, 0] : [scores.Precision, scores.Recall, scores.F1];
        });
    }

    /// <summary>
    /// Grouped bars of each citer's necessity win rate and, with generated answers, its F1 on
    /// confusions; null when neither was measured.
    /// </summary>
    public static string? FaithfulnessChart(EvaluationSummary summary)
    {
        bool confusions = summary.Citers.Any(c => c.Confusions is not null);
        if (!summary.Citers.Any(c => c.Faithfulness is not null) && !confusions)
            return null;
        return Bars(confusions ? "Necessity win rate and F1 on confusions (%)" : "Necessity win rate (%)",
            confusions ? ["win rate", "confusions F1"] : ["win rate"], summary.Citers,
            c => confusions ? [c.Faithfulness?.NecessityWinRate ?? 0, c.Confusions?.F1 ?? 0] : [c.Faithfulness?.NecessityWinRate ?? 0]);
    }

    // Bars of percentages, one group per citer, with the citer's time per item under its name.
    private static string Bars(string title, string[] series, IReadOnlyList<CiterSummary> citers, Func<CiterSummary, double[]> values)
    {
        const int left = 50, top = 40, plotHeight = 220, bar = 28;
        int group = bar * series.Length + 36;
        int width = left + Math.Max(1, citers.Count) * group + 20, height = top + plotHeight + 60;
        var svg = new StringBuilder();
        svg.AppendLine(Invariant, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">""");
        svg.AppendLine(Invariant, $"""<text x="{left}" y="18" font-size="14" font-weight="bold">{Escape(title)}</text>""");
        for (int i = 0; i < series.Length; i++)
        {
            svg.AppendLine(Invariant, $"""<rect x="{left + i * 110}" y="26" width="10" height="10" fill="{Colors[i]}"/><text x="{left + 14 + i * 110}" y="35">{Escape(series[i])}</text>""");
        }
        for (int tick = 0; tick <= 100; tick += 25)
        {
            double y = top + plotHeight * (1 - tick / 100.0);
            svg.AppendLine(Invariant, $"""<line x1="{left}" x2="{width - 10}" y1="{y:F1}" y2="{y:F1}" stroke="#ddd"/><text x="{left - 6}" y="{y + 4:F1}" text-anchor="end">{tick}</text>""");
        }
        for (int c = 0; c < citers.Count; c++)
        {
            var citer = citers[c];
            var shown = values(citer);
            int x0 = left + c * group + 12;
            double middle = x0 + series.Length * bar / 2.0 - 2;
            for (int i = 0; i < series.Length; i++)
            {
                double h = plotHeight * shown[i] / 100;
                svg.AppendLine(Invariant, $"""<rect x="{x0 + i * bar}" y="{top + plotHeight - h:F1}" width="{bar - 4}" height="{h:F1}" fill="{Colors[i]}"><title>{Escape(citer.Name)} {Escape(series[i])}: {shown[i]:F1}</title></rect>""");
                svg.AppendLine(Invariant, $"""<text x="{x0 + i * bar + (bar - 4) / 2.0:F1}" y="{top + plotHeight - h - 3:F1}" text-anchor="middle" font-size="10">{shown[i]:F0}</text>""");
            }
            svg.AppendLine(Invariant, $"""<text x="{middle:F1}" y="{top + plotHeight + 18}" text-anchor="middle" font-weight="bold">{Escape(citer.Name)}</text>""");
            svg.AppendLine(Invariant, $"""<text x="{middle:F1}" y="{top + plotHeight + 34}" text-anchor="middle" fill="#555">{FormatSeconds(citer.SecondsPerItem)} / item</text>""");
        }
        svg.AppendLine("</svg>");
        return svg.ToString();
    }

    private static string Nats(double? value) => value is { } v ? v.ToString("F2", Invariant) : "n/a";

    private static string Pct(double? value) => value is { } v ? v.ToString("F1", Invariant) : "n/a";

    private static string FormatSeconds(double seconds) =>
        seconds < 0.01 ? $"{(seconds * 1000).ToString("F2", Invariant)} ms" : seconds < 1 ? $"{(seconds * 1000).ToString("F0", Invariant)} ms" : $"{seconds.ToString("F2", Invariant)} s";

    private static string Escape(string text) => SecurityElement.Escape(text);
}
