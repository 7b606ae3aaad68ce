using System.CommandLine;
using Mirage.Core.Models;

namespace Mirage.Host.Cli;

/// <summary><c>mirage generate</c>: continue a prompt with a model and print the continuation as it arrives.</summary>
internal static class GenerateCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new ModelOptions(error);
        var prompt = new Option<string>("--prompt") { Description = "The text to continue.", Required = true };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most new tokens to generate.", DefaultValueFactory = _ => 128 };
        var temperature = new Option<double>("--temperature") { Description = "0 for greedy decoding; higher samples more freely.", DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling mass in (0, 1].", DefaultValueFactory = _ => 1 };
        var seed = new Option<long?>("--seed") { Description = "Seed for sampling, to repeat a sampled run." };
        var stop = new Option<string[]>("--stop") { Description = "Stop when this string appears (repeatable).", AllowMultipleArgumentsPerToken = false };

        maxTokens.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--max-tokens must be at least 1."); });
        temperature.Validators.Add(r => { if (r.GetValueOrDefault<double>() < 0) r.AddError("--temperature must be 0 or positive."); });
        topP.Validators.Add(r => { if (r.GetValueOrDefault<double>() is <= 0 or > 1) r.AddError("--top-p must be in (0, 1]."); });

        var command = new Command("generate", "Continue a prompt with a model and print the continuation.");
        model.AddTo(command);
        command.Options.Add(prompt);
        command.Options.Add(maxTokens);
        command.Options.Add(temperature);
        command.Options.Add(topP);
        command.Options.Add(seed);
        command.Options.Add(stop);
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var lm = await model.LoadAsync(parse, cancellationToken);
            var options = new GenerationOptions
            {
                MaxTokens = parse.GetValue(maxTokens),
                Temperature = parse.GetValue(temperature),
                TopP = parse.GetValue(topP),
                Seed = parse.GetValue(seed),
                StopStrings = parse.GetValue(stop) ?? [],
            };
            var ids = lm.Tokenizer.EncodeIds(parse.GetRequiredValue(prompt));
            foreach (var token in lm.GenerateTokens(ids, options, cancellationToken))
            {
                await output.WriteAsync(token.TextDelta);
                await output.FlushAsync(cancellationToken);
            }
            await output.WriteLineAsync();
            return 0;
        });
        return command;
    }
}
