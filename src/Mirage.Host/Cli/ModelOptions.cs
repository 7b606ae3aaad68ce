using System.CommandLine;
using Mirage.Core.Models;

namespace Mirage.Host.Cli;

/// <summary>The options every verb that loads a model shares: folder, dtype, engine, device, threads.</summary>
internal sealed class ModelOptions
{
    private readonly TextWriter _notes;

    /// <summary>The embedded reader model, copied beside the executable at build and publish.</summary>
    public static string EmbeddedModel => LanguageModel.EmbeddedReaderDirectory;

    public Option<string> Model { get; } = new("--model")
    {
        Description = "A Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer), hf:ORG/NAME[@REVISION] (or ORG/NAME) from the Hugging Face cache (see mirage pull), a FILE.gguf, or ollama:NAME[:TAG]; default: the embedded reader model.",
        DefaultValueFactory = _ => EmbeddedModel,
    };

    public Option<string> DType { get; } = new("--dtype") { Description = "Compute dtype on the torch engine: auto (bfloat16 on CPUs with native bfloat16 for models of hidden size 512 or more, float32 otherwise), float32, bfloat16, float16 (GPU only) or float64 (reference precision).", DefaultValueFactory = _ => "auto" };

    public Option<string> Engine { get; } = new("--engine") { Description = "What runs the model: auto (llama.cpp for a GGUF file when the method needs forward passes only, torch otherwise), torch, or llama.cpp (GGUF files: weights stay quantized, in about the file's size).", DefaultValueFactory = _ => "auto" };

    public Option<string> Device { get; } = new("--device") { Description = "cpu, cuda or cuda:N.", DefaultValueFactory = _ => "cpu" };

    public Option<int?> Threads { get; } = new("--threads") { Description = "CPU threads for torch and llama.cpp (default: one per core)." };

    /// <summary>Options whose load notes (an engine fallback) go to <paramref name="notes"/>.</summary>
    public ModelOptions(TextWriter notes)
    {
        _notes = notes;
        DType.AcceptOnlyFromAmong([.. ComputeOptions.DTypeNames]);
        Engine.AcceptOnlyFromAmong([.. ModelEngines.Names]);
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
        command.Options.Add(Engine);
        command.Options.Add(Device);
        command.Options.Add(Threads);
    }

    /// <summary>Loads the model the options name; <paramref name="needsGradients"/> when the method needs TorchSharp (auto then picks it).</summary>
    public async Task<LanguageModel> LoadAsync(ParseResult parse, CancellationToken cancellationToken, bool needsGradients = false)
    {
        var directory = parse.GetRequiredValue(Model);
        if (directory == EmbeddedModel && !Directory.Exists(directory))
            throw new Mirage.Core.MirageException($"No --model was given and the embedded reader model is missing at '{directory}'; pass --model DIR.");
        var model = await LanguageModel.LoadAsync(directory, new ComputeOptions
        {
            DType = ComputeOptions.ParseDType(parse.GetRequiredValue(DType)),
            Device = parse.GetRequiredValue(Device),
            Threads = parse.GetValue(Threads),
            Engine = ModelEngines.Parse(parse.GetRequiredValue(Engine)),
            NeedsGradients = needsGradients,
        }, cancellationToken);
        if (model.EngineNote is { } note)
            await _notes.WriteLineAsync(note);
        return model;
    }
}
