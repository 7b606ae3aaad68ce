using System.CommandLine;
using Mirage.Core.Models.Gguf;

namespace Mirage.Host.Cli;

/// <summary><c>mirage convert</c>: a Hugging Face checkpoint folder as a GGUF file that llama.cpp (and Mirage) load.</summary>
internal static class ConvertCommand
{
    public static Command Create(TextWriter output)
    {
        var model = new Option<string>("--model") { Description = "The Hugging Face checkpoint folder.", Required = true };
        var outFile = new Option<string>("--out") { Description = "The GGUF file to write.", Required = true };
        var type = new Option<string>("--type") { Description = "How matrices are stored: f32, f16, bf16 or q8_0 (norms stay f32).", DefaultValueFactory = _ => "f32" };
        type.AcceptOnlyFromAmong("f32", "f16", "bf16", "q8_0");
        var command = new Command("convert", "Write a Hugging Face checkpoint folder (Llama, Mistral, Qwen2) as a GGUF file for llama.cpp, Ollama or mirage --model FILE.gguf.")
        {
            model, outFile, type,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var path = parse.GetRequiredValue(outFile);
            var stored = Enum.Parse<GgufType>(parse.GetRequiredValue(type), ignoreCase: true);
            await Task.Run(() => GgufConverter.FromHuggingFace(parse.GetRequiredValue(model), path, stored), cancellationToken);
            await output.WriteLineAsync($"wrote {path} ({new FileInfo(path).Length / 1048576.0:F1} MiB, {stored})");
            return 0;
        });
        return command;
    }
}
