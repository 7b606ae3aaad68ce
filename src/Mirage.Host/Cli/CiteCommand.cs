using System.CommandLine;
using Mirage.Core.Attribution;
using Mirage.Core.Citations;

namespace Mirage.Host.Cli;

/// <summary><c>mirage cite</c>: which passage supports which sentence of an answer.</summary>
internal static class CiteCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new ModelOptions(error);
        var question = new Option<string>("--question") { Description = "The question the answer responds to.", Required = true };
        var passages = new Option<string>("--passages") { Description = "JSON file: a list of {id?, title?, text, url?}, or an ALCE item with 'docs'.", Required = true };
        var answer = new Option<string>("--answer") { Description = "The answer to cite (teacher-forced, not regenerated).", Required = true };
        var format = CitationOutput.CreateFormatOption();
        var routes = CitationOutput.CreateRoutesOption();
        var outFile = new Option<string?>("--out") { Description = "Write to this file instead of standard output." };
        var method = new Option<string>("--method") { Description = "How sentences are cited: a CCI attribution method (saliency, input_x_gradient, integrated_gradients, attention, occlusion, value_zeroing, layer_gradient_x_activation, layer_integrated_gradients), ablation (the passages whose removal takes the sentence's support away; the default), or routes (the passages the sentence's information-flow routes start from).", DefaultValueFactory = _ => new CitationOptions().MethodName };
        var scoredTokens = new Option<string>("--scored-tokens") { Description = $"Tokens ablation and verification score: {CitationSettingNames.Choices(CitationSettingNames.ScoredTokenChoices)} (by CTI).", DefaultValueFactory = _ => "all" };
        scoredTokens.AcceptOnlyFromAmong(CitationSettingNames.Spellings(CitationSettingNames.ScoredTokenChoices));
        var evidence = new Option<bool>("--evidence") { Description = "With ablation: also remove each sentence of every cited passage and show the sentences the citation rests on." };
        var verify = new Option<bool>("--verify") { Description = "Measure each cited sentence's necessity and sufficiency by ablation, and flag citations that fail." };
        var filter = new Option<string>("--filter") { Description = $"CCI filter: {CitationSettingNames.Choices(CitationSettingNames.Filters)} ('-' or '_').", DefaultValueFactory = _ => "top-percent" };
        var topPercent = new Option<double>("--top-percent") { Description = "p for the top-percent filter.", DefaultValueFactory = _ => 0.05 };
        var topK = new Option<int>("--top-k") { Description = "k for the top-k filter.", DefaultValueFactory = _ => 3 };
        var atMost = new Option<int>("--at-most") { Description = "Most citations per sentence.", DefaultValueFactory = _ => 3 };
        var template = new Option<string?>("--prompt-template") { Description = "Prompt with {instruction}, {passages} and {question} (default: MIRAGE style)." };
        var passageTemplate = new Option<string?>("--passage-template") { Description = "One passage with {index}, {title}, {text} (default: 'Document [{index}](Title: {title}): {text}')." };
        var separator = new Option<string?>("--passage-separator") { Description = "Between passages (default: a newline)." };
        var promptFormat = new Option<string>("--prompt-format") { Description = $"{CitationSettingNames.Choices(CitationSettingNames.PromptFormats)}: auto uses the model's chat template if it has one.", DefaultValueFactory = _ => "auto" };
        promptFormat.AcceptOnlyFromAmong(CitationSettingNames.Spellings(CitationSettingNames.PromptFormats));
        var noContext = new Option<string>("--no-context") { Description = "The no-context input: literal (the prompt without the passage block, as MIRAGE's reference) or trim (also drop the whitespace after it).", DefaultValueFactory = _ => "literal" };
        noContext.AcceptOnlyFromAmong(CitationSettingNames.Spellings(CitationSettingNames.NoContextRules));
        var ctiThreshold = new Option<double>("--cti-std") { Description = "CTI selection: mean + k * std, this k.", DefaultValueFactory = _ => 1.0 };
        method.AcceptOnlyFromAmong([.. CitationOptions.MethodNames]);
        filter.AcceptOnlyFromAmong(CitationSettingNames.Spellings(CitationSettingNames.Filters));

        var command = new Command("cite", "Cite each sentence of an answer to the passages that support it, from the model's internals.");
        model.AddTo(command);
        foreach (var option in new Option[] { question, passages, answer, format, routes, outFile, method, scoredTokens, evidence, verify, filter, topPercent, topK, atMost, ctiThreshold, template, passageTemplate, separator, promptFormat, noContext })
            command.Options.Add(option);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = CitationSettingNames.Apply(new CitationOptions { Prompt = Prompt(parse.GetValue(template), parse.GetValue(passageTemplate), parse.GetValue(separator)) },
                parse.GetRequiredValue(method), parse.GetRequiredValue(filter), parse.GetValue(topPercent), parse.GetValue(topK), parse.GetValue(atMost), parse.GetValue(ctiThreshold),
                parse.GetRequiredValue(noContext), parse.GetRequiredValue(scoredTokens), parse.GetValue(verify), parse.GetValue(evidence), parse.GetRequiredValue(promptFormat));
            var request = new CitationRequest(parse.GetRequiredValue(question), PassageFile.Read(parse.GetRequiredValue(passages)), parse.GetRequiredValue(answer), options);
            bool withRoutes = CitationOutput.WantsRoutes(parse, routes, format);
            using var lm = await model.LoadAsync(parse, cancellationToken, needsGradients: request.Options!.NeedsInternals || withRoutes);
            var engine = new MirageCitationEngine(lm, AttributionEngine.CreateDefault());
            var result = await engine.CiteAsync(request, cancellationToken);
            var traced = withRoutes ? await CitationOutput.TraceEveryTokenAsync(engine, request, error, cancellationToken) : null;
            var rendered = CitationOutput.Render(result, parse.GetRequiredValue(format), traced);
            await CitationOutput.WriteAsync(rendered, parse.GetValue(outFile), output, error, cancellationToken);
            await error.WriteLineAsync($"{result.Sentences.Sum(s => s.Citations.Count)} citations over {result.Sentences.Count} sentences; "
                + $"{result.Cost.ForwardPasses} forward and {result.Cost.BackwardPasses} backward passes in {result.Cost.TotalMs / 1000:F2} s with {result.ModelId}.");
            return 0;
        });
        return command;
    }

    private static PromptTemplate Prompt(string? template, string? passage, string? separator)
    {
        var prompt = new PromptTemplate();
        // Shells pass "\n" literally; templates mean newlines.
        static string Unescape(string s) => s.Replace("\\n", "\n").Replace("\\t", "\t");
        if (template is not null)
            prompt = prompt with { Template = Unescape(template) };
        if (passage is not null)
            prompt = prompt with { PassageTemplate = Unescape(passage), UntitledPassageTemplate = Unescape(passage.Replace("(Title: {title})", "")) };
        if (separator is not null)
            prompt = prompt with { PassageSeparator = Unescape(separator) };
        return prompt;
    }
}
