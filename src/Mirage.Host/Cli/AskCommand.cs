using System.CommandLine;
using Mirage.Core.Citations;
using Mirage.Core.Models;

namespace Mirage.Host.Cli;

/// <summary><c>mirage ask</c>: answer a question from passages with the model, then cite the answer.</summary>
internal static class AskCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new ModelOptions(error);
        var question = new Option<string>("--question") { Description = "The question.", Required = true };
        var passages = new Option<string>("--passages") { Description = "JSON file: a list of {id?, title?, text, url?}, or an ALCE item with 'docs'.", Required = true };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most answer tokens.", DefaultValueFactory = _ => 96 };
        var format = CitationOutput.CreateFormatOption();
        var routes = CitationOutput.CreateRoutesOption();
        maxTokens.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--max-tokens must be at least 1."); });
        question.Validators.Add(r => { if (string.IsNullOrWhiteSpace(r.GetValueOrDefault<string>())) r.AddError("--question is empty: ask needs a question to answer."); });

        var command = new Command("ask", "Answer a question from the passages with the model, then cite each sentence of the answer.");
        model.AddTo(command);
        foreach (var option in new Option[] { question, passages, maxTokens, format, routes })
            command.Options.Add(option);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var docs = PassageFile.Read(parse.GetRequiredValue(passages));
            bool withRoutes = CitationOutput.WantsRoutes(parse, routes, format);
            using var lm = await model.LoadAsync(parse, cancellationToken, needsGradients: withRoutes);
            var options = new CitationOptions();
            var ids = PreparedCitation.AnswerPrompt(lm, parse.GetRequiredValue(question), docs, options.Prompt, cancellationToken);
            var generated = lm.Generate(ids, new GenerationOptions { MaxTokens = parse.GetValue(maxTokens), StopStrings = ["\n"], KeepTrace = true }, cancellationToken);
            using var trace = generated.Trace;
            var answer = generated.Text.Trim();
            if (answer.Length == 0)
                throw new Mirage.Core.MirageException("The model produced an empty answer; there is nothing to cite.");

            var engine = new MirageCitationEngine(lm, defaults: options);
            var request = new CitationRequest(parse.GetRequiredValue(question), docs, answer, AnswerTokenIds: generated.TokenIds) { Trace = trace };
            var result = await engine.CiteAsync(request, cancellationToken);
            var traced = withRoutes ? await CitationOutput.TraceEveryTokenAsync(engine, request, error, cancellationToken) : null;
            await output.WriteAsync(CitationOutput.Render(result, parse.GetRequiredValue(format), traced));
            await output.FlushAsync(cancellationToken);
            await error.WriteLineAsync($"answered in {(generated.PrefillTime + generated.DecodeTime).TotalSeconds:F2} s ({generated.TokenIds.Count} tokens), cited in {result.Cost.TotalMs / 1000:F2} s with {result.ModelId}.");
            return 0;
        });
        return command;
    }
}
