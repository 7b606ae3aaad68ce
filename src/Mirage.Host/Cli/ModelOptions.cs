using System.CommandLine;
using Mirage.Core.Models;

namespace Mirage.Host.Cli;

/// <summary>The options every verb that loads a model shares: folder, dtype, device, threads.</summary>
internal sealed class ModelOptions
{
    /// <summary>The embedded reader model, copied beside the executable at build and publish.</summary>
    public static string EmbeddedModel => LanguageModel.EmbeddedReaderDirectory;

    public Option<string> Model { get; } = new("--model")
    {
        Description = "A Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer), hf:ORG/NAME[@REVISION] (or ORG/NAME) from the Hugging Face cache (see mirage pull), a FILE.gguf, or ollama:NAME[:TAG]; default: the embedded reader model.",
        DefaultValueFactory = _ => EmbeddedModel,
    };

    public Option<string> DType { get; } = new("--dtype") { Description = "Compute dtype: float32, bfloat16 (faster on CPUs with AVX512-BF16), float16 (GPU only) or float64 (reference precision).", DefaultValueFactory = _ => "float32" };

    public Option<string> Device { get; } = new("--device") { Description = "cpu, cuda or cuda:N.", DefaultValueFactory = _ => "cpu" };

    public Option<int?> Threads { get; } = new("--threads") { Description = "CPU threads for torch (default: one per core)." };

    public ModelOptions()
    {
        DType.AcceptOnlyFromAmong([.. ComputeOptions.DTypeNames]);
        Threads.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is < 1)
                r.AddError("--threads must be at least 1.");
        });
    }

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        command.Options.Add(DType);
        command.Options.Add(Device);
        command.Options.Add(Threads);
    }

    public Task<LanguageModel> LoadAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var directory = parse.GetRequiredValue(Model);
        if (directory == EmbeddedModel && !Directory.Exists(directory))
            throw new Mirage.Core.MirageException($"No --model was given and the embedded reader model is missing at '{directory}'; pass --model DIR.");
        return LanguageModel.LoadAsync(directory, new ComputeOptions
        {
            DType = ComputeOptions.ParseDType(parse.GetRequiredValue(DType)),
            Device = parse.GetRequiredValue(Device),
            Threads = parse.GetValue(Threads),
        }, cancellationToken);
    }
}
