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
    private static readonly string[] DefaultCiters = ["mirage", "ablation", "contextcite", "attention", "bm25", "random"];
    private static readonly string[] CciMethods = [.. AttributionMethodRegistry.BuiltInNames];
    private static readonly string[] AllCiters = [.. DefaultCiters, "routes", .. CciMethods.Select(m => $"mirage-{m}")];

    public static Command Create(TextWriter output)
    {
        var data = new Option<string>("--data") { Required = true, Description = "ALCE-format JSON (a list, or {\"data\": [...]}); gold_citations enable the exact metrics." };
        var model = new Option<string>("--model") { DefaultValueFactory = _ => Path.Combine("models", "reader"), Description = "The model: it is cited (mirage, ablation, contextcite, attention), writes generated answers, and measures faithfulness." };
        var outDir = new Option<string>("--out") { DefaultValueFactory = _ => "eval-output", Description = "Folder for metrics.json, items.jsonl, report.md and chart.svg." };
        var citers = new Option<string[]>("--citers") { DefaultValueFactory = _ => DefaultCiters, AllowMultipleArgumentsPerToken = true, Description = "Citers to run: mirage (the engine's default), mirage-METHOD (MIRAGE with that CCI method), ablation, contextcite, attention, routes (information-flow routes), bm25, random." };
        var answers = new Option<string>("--answers") { DefaultValueFactory = _ => "gold", Description = "Cite the data's answers (gold) or the model's own greedy answers (generated, cached in OUT/generated-answers.json, scored against source gold)." };
        answers.AcceptOnlyFromAmong("gold", "generated");
        var faithfulness = new Option<bool>("--faithfulness") { DefaultValueFactory = _ => true, Description = "Measure every citer's necessity, sufficiency and win rate on the model (true or false)." };
        var scoredTokens = new Option<string>("--scored-tokens") { DefaultValueFactory = _ => new AblationOptions().Tokens == ScoredTokens.All ? "all" : "selected", Description = "Tokens the ablation citer scores: selected (by CTI) or all." };
        scoredTokens.AcceptOnlyFromAmong("selected", "all");
        var coverage = new Option<double>("--coverage") { DefaultValueFactory = _ => new AblationOptions().Coverage, Description = "The ablation citer's share of the context's effect its cited passages must take away." };
        var pruneWithin = new Option<double>("--prune-within") { DefaultValueFactory = _ => new AblationOptions().PruneWithin ?? 1, Description = "The ablation citer's pruning tolerance in nats (ALCE's precision rule with the model as judge)." };
        var noPrune = new Option<bool>("--no-prune") { Description = "Keep every passage the ablation citer's search removed." };
        var masks = new Option<int>("--contextcite-masks") { DefaultValueFactory = _ => 32, Description = "ContextCite's random ablation masks per item." };
        var alpha = new Option<double>("--contextcite-alpha") { DefaultValueFactory = _ => ContextCiteCiter.DefaultAlpha, Description = "ContextCite's L1 penalty (sklearn's alpha) on log-probabilities summed over a sentence." };
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N items." };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1, Description = "Seed of the random baseline." };
        var judge = new Option<string>("--judge") { DefaultValueFactory = _ => "gold", Description = "Entailment judge for ALCE metrics: gold (needs gold_citations) or none." };
        var topPercent = new Option<double>("--top-percent") { DefaultValueFactory = _ => new CitationOptions().TopPercent, Description = "MIRAGE's Top-% CCI filter." };
        var atMost = new Option<int>("--at-most") { DefaultValueFactory = _ => new CitationOptions().AtMostCitations ?? 3, Description = "MIRAGE's citations per sentence at most." };
        var ctiStd = new Option<double>("--cti-std") { DefaultValueFactory = _ => new CitationOptions().Pecore.CtiStdThreshold, Description = "MIRAGE's CTI threshold in standard deviations." };
        var cciMethod = new Option<string>("--cci-method") { Description = "Run `mirage` as MIRAGE with this CCI attribution method (saliency, input_x_gradient, integrated_gradients, attention, occlusion, value_zeroing, layer_gradient_x_activation, layer_integrated_gradients), named mirage-METHOD; the same as --citers mirage-METHOD." };
        cciMethod.AcceptOnlyFromAmong(CciMethods);
        var routesRatio = new Option<double>("--routes-ratio") { DefaultValueFactory = _ => new CitationOptions().RouteRatio, Description = "The routes citer: the share of the flow, relative to the top passage's, another passage needs to be cited too." };
        var engineOption = new Option<string>("--engine") { DefaultValueFactory = _ => "auto", Description = "What runs the model: auto (llama.cpp for a GGUF file unless a citer needs gradients or attention weights), torch or llama.cpp." };
        engineOption.AcceptOnlyFromAmong([.. ModelEngines.Names]);
        var noContext = new Option<string>("--no-context") { DefaultValueFactory = _ => "literal", Description = "MIRAGE's no-context input: literal (the reference's) or trim." };
        noContext.AcceptOnlyFromAmong("literal", "trim");
        citers.AcceptOnlyFromAmong(AllCiters);
        judge.AcceptOnlyFromAmong("gold", "none");
        var command = new Command("run", "Run citers side by side on ALCE-format data and write metrics.json, items.jsonl, report.md and chart.svg.")
        {
            data, model, outDir, citers, answers, faithfulness, limit, seed, judge, topPercent, atMost, ctiStd, cciMethod, noContext, scoredTokens, coverage, pruneWithin, noPrune, masks, alpha, routesRatio, engineOption,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var items = await AlceFile.LoadAsync(parse.GetRequiredValue(data), cancellationToken);
            if (parse.GetValue(limit) is int n)
                items = items.Take(n).ToList();
            var names = parse.GetRequiredValue(citers).Distinct().ToList();
            bool generated = parse.GetRequiredValue(answers) == "generated", measure = parse.GetValue(faithfulness);
            LanguageModel? loaded = null;
            if (generated || measure || names.Any(c => c is not ("bm25" or "random")))
            {
                var directory = parse.GetRequiredValue(model);
                if (ModelReference.Parse(directory).Kind == ModelSourceKind.Folder && !Directory.Exists(directory))
                {
                    output.WriteLine($"error: no model folder at '{directory}'. Pass --model, or run from the repository root for the embedded reader (models/reader).");
                    return 1;
                }
                // The attention and routes citers and MIRAGE's CCI methods need TorchSharp; the other citers run forward passes only.
                bool gradients = names.Any(c => c is "attention" or "routes" || (c.StartsWith("mirage-", StringComparison.Ordinal) && c != "mirage-ablation"))
                    || (names.Contains("mirage") && parse.GetResult(cciMethod) is not null);
                loaded = await LanguageModel.LoadAsync(directory, new ComputeOptions { Engine = ModelEngines.Parse(parse.GetRequiredValue(engineOption)), NeedsGradients = gradients }, cancellationToken);
                if (loaded.EngineNote is { } note)
                    output.WriteLine($"note: {note}");
            }
            using var modelScope = loaded;
            var template = new PromptTemplate { NoContext = Enum.Parse<NoContextRule>(parse.GetRequiredValue(noContext), ignoreCase: true) };
            var options = new CitationOptions
            {
                TopPercent = parse.GetValue(topPercent),
                AtMostCitations = parse.GetValue(atMost),
                Pecore = new CitationOptions().Pecore with { CtiStdThreshold = parse.GetValue(ctiStd) },
                Ablation = new AblationOptions
                {
                    Tokens = Enum.Parse<ScoredTokens>(parse.GetRequiredValue(scoredTokens), ignoreCase: true),
                    Coverage = parse.GetValue(coverage),
                    PruneWithin = parse.GetValue(noPrune) ? null : parse.GetValue(pruneWithin),
                },
                Prompt = template,
            };
            options.Validate();
            // --cci-method keeps its old meaning: `mirage` becomes MIRAGE with that method.
            var cciMethodName = parse.GetResult(cciMethod) is null ? null : parse.GetRequiredValue(cciMethod);
            var attribution = AttributionEngine.CreateDefault();
            var engine = loaded is null ? null : new MirageCitationEngine(loaded, attribution);
            var runners = names.Select<string, ICiter>(name => name switch
            {
                "mirage" when cciMethodName is not null => new MirageCiter(engine!, options.WithMethod(cciMethodName), $"mirage-{cciMethodName}"),
                "mirage" => new MirageCiter(engine!, options, "mirage"),
                _ when name.StartsWith("mirage-", StringComparison.Ordinal) => new MirageCiter(engine!, options.WithMethod(name["mirage-".Length..]), name),
                "ablation" => new MirageCiter(engine!, options.WithMethod("ablation"), "ablation"),
                "contextcite" => new ContextCiteCiter(loaded!, template, parse.GetValue(masks), parse.GetValue(alpha), options.AtMostCitations ?? 3, parse.GetValue(seed)),
                "attention" => new AttentionCiter(loaded!, attribution, template),
                "routes" => new MirageCiter(engine!, options.WithMethod("routes") with { RouteRatio = parse.GetValue(routesRatio) }, "routes"),
                "bm25" => new Bm25Citer(),
                _ => new RandomCiter(parse.GetValue(seed)),
            }).ToList();
            double? generationSeconds = null;
            if (generated)
            {
                var cache = Path.Combine(parse.GetRequiredValue(outDir), "generated-answers.json");
                (items, generationSeconds, int empty) = await GeneratedAnswers.LoadAsync(loaded!, items, template, 96, cache, output, cancellationToken);
                if (empty > 0)
                    output.WriteLine($"note: {empty} items got an empty answer and are left out.");
            }
            var settings = new EvaluationSettings(
                parse.GetValue(judge) == "gold" ? new GoldProvenanceJudge() : null,
                measure ? new FaithfulnessMeter(loaded!, template, parse.GetValue(seed)) : null,
                generationSeconds,
                generated ? "generated" : "gold");
            var summary = await EvaluationRunner.RunAsync(
                EvalCli.Invocation + " " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1).Select(ShellQuote)), parse.GetRequiredValue(data), items, runners,
                settings, parse.GetRequiredValue(outDir), output, cancellationToken);
            foreach (var note in summary.Notes)
                output.WriteLine($"note: {note}");
            foreach (var c in summary.Citers)
            {
                var faithful = c.Faithfulness is { } f ? $"   necessity win {f.NecessityWinRate:F1}% (mean {f.MeanNecessity:F2}, sufficiency {f.MeanSufficiency:F2})" : "";
                var confusions = c.Confusions is { } x ? $"   confusions F1 {x.F1:F1} ({x.Sentences})" : "";
                output.WriteLine($"{c.Name,-12} exact P/R/F1 {Show(c.Exact)}   ALCE P/R/F1 {Show(c.Alce)}   {c.SecondsPerItem:F3} s/item{faithful}{confusions}");
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
