using System.CommandLine;
using Mirage.Core;
using Mirage.Core.Models;
using Mirage.Core.Tokenization;

namespace Mirage.Host.Cli;

/// <summary><c>mirage inspect</c>: print what a checkpoint is: architecture, size, dtype, tokenizer.</summary>
internal static class InspectCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new ModelOptions(error);
        var command = new Command("inspect", "Print a checkpoint's architecture, parameter count, dtype and tokenizer facts.");
        model.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var lm = await model.LoadAsync(parse, cancellationToken);
            await output.WriteAsync(Describe(lm));
            return 0;
        });
        return command;
    }

    internal static string Describe(LanguageModel lm)
    {
        var c = lm.Config;
        var t = lm.Tokenizer;
        var windows = c.SlidingWindows.Where(w => w is not null).Distinct().ToList();
        string Ids(IEnumerable<int> ids) => string.Join(", ", ids);
        var lines = new List<(string, string)>
        {
            ("model", $"{lm.ModelId} ({Path.GetFullPath(lm.Directory)})"),
            ("source format", lm.SourceFormat),
            ("architecture", c.Architecture),
            ("parameters", $"{lm.ParameterCount:N0} ({lm.ParameterCount / 1e6:F2}M)"),
            ("checkpoint dtype", c.TorchDtype ?? "unknown"),
            ("engine", ModelEngines.NameOf(lm.Engine) + (lm.EngineNote is { } note ? $" ({note})" : "")),
            ("compute dtype", $"{ComputeOptions.NameOf(lm.DType)} on {lm.Device}"),
            ("layers", c.NumLayers.ToString()),
            ("hidden size", c.HiddenSize.ToString()),
            ("intermediate size", c.IntermediateSize.ToString()),
            ("attention heads", $"{c.NumHeads} query, {c.NumKeyValueHeads} key/value, head dim {c.HeadDim}"),
            ("biases", $"qkv {c.QkvBias}, output {c.OutputBias}, mlp {c.MlpBias}"),
            ("rope", $"theta {c.RopeTheta}" + (c.RopeScaling is { } s ? $", scaling {s.Type} x{s.Factor}" : ", no scaling")),
            ("sliding window", windows.Count == 0 ? "none" : string.Join(", ", windows)),
            ("context length", c.MaxPositionEmbeddings.ToString()),
            ("tied embeddings", c.TieWordEmbeddings.ToString()),
            ("tokenizer", $"{t.Kind}, {t.VocabSize} ids, {t.SpecialTokens.Count} special"),
            ("bos", t.BosId is int bos ? $"{bos} (added: {t.AddBos})" : "none"),
            ("eos", t.EosIds.Count > 0 ? Ids(t.EosIds) : "none"),
            ("chat template", ChatTemplateSummary(t)),
        };
        int width = lines.Max(l => l.Item1.Length);
        return string.Concat(lines.Select(l => $"{l.Item1.PadRight(width)}  {l.Item2}\n"));
    }

    // A template past the renderer's limits has refused the model already; one this renderer
    // cannot compile is shown with its reason, since only chat prompts need it.
    private static string ChatTemplateSummary(TextTokenizer tokenizer)
    {
        if (tokenizer.Settings.ChatTemplate is not { } source)
            return "none";
        try
        {
            _ = tokenizer.ChatTemplate;
            return $"yes ({source.Length:N0} chars, renders a sample conversation)";
        }
        catch (MirageException e)
        {
            return $"yes ({source.Length:N0} chars), not usable: {e.Message}";
        }
    }
}
