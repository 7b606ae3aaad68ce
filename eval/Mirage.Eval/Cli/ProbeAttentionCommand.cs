using System.CommandLine;
using System.Globalization;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Eval.Data;
using Mirage.Eval.Harness;

namespace Mirage.Eval.Cli;

/// <summary><c>mirage-eval probe-attention</c>: the attention citer's weights read several ways, to tell a defect from what attention gives.</summary>
internal static class ProbeAttentionCommand
{
    public static Command Create(TextWriter output)
    {
        var data = new Option<string>("--data") { Required = true, Description = "ALCE-format JSON with gold_citations (use the development split)." };
        var model = new Option<string>("--model") { DefaultValueFactory = _ => Path.Combine("models", "reader"), Description = "The model whose attention is read." };
        var limit = new Option<int?>("--limit") { Description = "Probe only the first N items." };
        var command = new Command("probe-attention", "Score attention-based citations by layer, head, normalisation and CTI gating, against gold.") { data, model, limit };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var items = await AlceFile.LoadAsync(parse.GetRequiredValue(data), cancellationToken);
            if (parse.GetValue(limit) is int n)
                items = items.Take(n).ToList();
            if (items.Any(i => i.GoldCitations is null))
            {
                output.WriteLine("error: probe-attention needs gold_citations in the data.");
                return 1;
            }
            using var lm = await LanguageModel.LoadAsync(parse.GetRequiredValue(model), cancellationToken: cancellationToken);
            var variants = AttentionProbe.Run(lm, items, new PromptTemplate()).OrderByDescending(v => v.Exact.F1).ToList();
            output.WriteLine("| attention read as | exact P | exact R | exact F1 | sentences abstained |");
            output.WriteLine("|---|---:|---:|---:|---:|");
            foreach (var v in variants)
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {v.Name} | {v.Exact.Precision:F1} | {v.Exact.Recall:F1} | {v.Exact.F1:F1} | {v.Abstained} |"));
            return 0;
        });
        return command;
    }
}
