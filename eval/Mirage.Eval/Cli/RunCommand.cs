using System.CommandLine;
using Mirage.Core.Attribution;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Models.Sources;
using Mirage.Eval.Data;
using Mirage.Eval.Harness;
using Mirage.Eval.Harness.Citers;

namespace Mirage.Eval.Cli;

/// <summary><c>mirage-eval run</c>: citers side by side on ALCE-format data, with metrics, per-item lines and a report.</summary>
internal static class RunCommand
{
    private static readonly string[] AllCiters = ["mirage", "attention", "bm25", "random"];

    public static Command Create(TextWriter output)
    {
        var data = new Option<string>("--data") { Required = true, Description = "ALCE-format JSON (a list, or {\"data\": [...]}); gold_citations enable the exact metrics." };
        var model = new Option<string>("--model") { DefaultValueFactory = _ => Path.Combine("models", "reader"), Description = "Model folder for the model-based citers (mirage, attention)." };
        var outDir = new Option<string>("--out") { DefaultValueFactory = _ => "eval-output", Description = "Folder for metrics.json, items.jsonl, report.md and chart.svg." };
        var citers = new Option<string[]>("--citers") { DefaultValueFactory = _ => AllCiters, AllowMultipleArgumentsPerToken = true, Description = "Citers to run: mirage, attention, bm25, random." };
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N items." };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1, Description = "Seed of the random baseline." };
        var judge = new Option<string>("--judge") { DefaultValueFactory = _ => "gold", Description = "Entailment judge for ALCE metrics: gold (needs gold_citations) or none." };
        var topPercent = new Option<double>("--top-percent") { DefaultValueFactory = _ => new CitationOptions().TopPercent, Description = "MIRAGE's Top-% CCI filter." };
        var atMost = new Option<int>("--at-most") { DefaultValueFactory = _ => new CitationOptions().AtMostCitations ?? 3, Description = "MIRAGE's citations per sentence at most." };
        var ctiStd = new Option<double>("--cti-std") { DefaultValueFactory = _ => new CitationOptions().Pecore.CtiStdThreshold, Description = "MIRAGE's CTI threshold in standard deviations." };
        var cciMethod = new Option<string>("--cci-method") { DefaultValueFactory = _ => new CitationOptions().Pecore.CciMethod, Description = "MIRAGE's CCI attribution method (saliency, input_x_gradient, integrated_gradients, attention, occlusion); a non-default one names the citer mirage-METHOD." };
        var noContext = new Option<string>("--no-context") { DefaultValueFactory = _ => "literal", Description = "MIRAGE's no-context input: literal (the reference's) or trim." };
        noContext.AcceptOnlyFromAmong("literal", "trim");
        citers.AcceptOnlyFromAmong(AllCiters);
        judge.AcceptOnlyFromAmong("gold", "none");
        var command = new Command("run", "Run citers side by side on ALCE-format data and write metrics.json, items.jsonl, report.md and chart.svg.")
        {
            data, model, outDir, citers, limit, seed, judge, topPercent, atMost, ctiStd, cciMethod, noContext,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var items = await AlceFile.LoadAsync(parse.GetRequiredValue(data), cancellationToken);
            if (parse.GetValue(limit) is int n)
                items = items.Take(n).ToList();
            var names = parse.GetRequiredValue(citers).Distinct().ToList();
            LanguageModel? loaded = null;
            if (names.Any(c => c is "mirage" or "attention"))
            {
                var directory = parse.GetRequiredValue(model);
                if (ModelReference.Parse(directory).Kind == ModelSourceKind.Folder && !Directory.Exists(directory))
                {
                    output.WriteLine($"error: no model folder at '{directory}'. Pass --model, or run from the repository root for the embedded reader (models/reader).");
                    return 1;
                }
                loaded = await LanguageModel.LoadAsync(directory, cancellationToken: cancellationToken);
            }
            using var modelScope = loaded;
            var template = new PromptTemplate { NoContext = Enum.Parse<NoContextRule>(parse.GetRequiredValue(noContext), ignoreCase: true) };
            var options = new CitationOptions
            {
                TopPercent = parse.GetValue(topPercent),
                AtMostCitations = parse.GetValue(atMost),
                Pecore = new CitationOptions().Pecore with { CtiStdThreshold = parse.GetValue(ctiStd), CciMethod = parse.GetRequiredValue(cciMethod) },
                Prompt = template,
            };
            var attribution = AttributionEngine.CreateDefault();
            var runners = names.Select<string, ICiter>(name => name switch
            {
                "mirage" => new MirageCiter(new MirageCitationEngine(loaded!, attribution), options,
                    options.Pecore.CciMethod == new CitationOptions().Pecore.CciMethod ? "mirage" : $"mirage-{options.Pecore.CciMethod}"),
                "attention" => new AttentionCiter(loaded!, attribution, template),
                "bm25" => new Bm25Citer(),
                _ => new RandomCiter(parse.GetValue(seed)),
            }).ToList();
            var summary = await EvaluationRunner.RunAsync(
                EvalCli.Invocation + " " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1).Select(ShellQuote)), parse.GetRequiredValue(data), items, runners,
                parse.GetValue(judge) == "gold" ? new GoldProvenanceJudge() : null, parse.GetRequiredValue(outDir), output, cancellationToken);
            foreach (var note in summary.Notes)
                output.WriteLine($"note: {note}");
            foreach (var c in summary.Citers)
            {
                output.WriteLine($"{c.Name,-10} exact P/R/F1 {Show(c.Exact)}   ALCE P/R/F1 {Show(c.Alce)}   {c.SecondsPerItem:F3} s/item");
            }
            output.WriteLine($"wrote {Path.Combine(parse.GetRequiredValue(outDir), "report.md")}");
            return 0;
        });
        return command;
    }

    private static string Show(PrecisionRecall? scores) => scores is null ? "n/a" : $"{scores.Precision:F1}/{scores.Recall:F1}/{scores.F1:F1}";

    // An argument as a POSIX shell reads it back: quoted when it holds anything but safe characters.
    private static string ShellQuote(string argument) =>
        argument.Length > 0 && argument.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,@%+".Contains(c)) ? argument : "'" + argument.Replace("'", "'\\''") + "'";
}
