using System.CommandLine;
using System.Text.Json;
using Mirage.Eval.Data;

namespace Mirage.Eval.Cli;

/// <summary><c>mirage-eval generate</c>: write generated reader items as ALCE JSON with gold provenance.</summary>
internal static class GenerateCommand
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static Command Create()
    {
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1, Description = "Seed; the same seed gives the same items." };
        var split = new Option<string>("--split") { DefaultValueFactory = _ => "test", Description = "train or test." };
        var count = new Option<int>("--count") { DefaultValueFactory = _ => 500, Description = "Number of items." };
        var unseen = new Option<bool>("--unseen-values") { Description = "Test items whose cities never occur in training (asks for a city every time)." };
        var repetition = new Option<string>("--repetition") { DefaultValueFactory = _ => "as-drawn", Description = "Where asked values repeat: as-drawn, gold-once (only in their fact passages) or wrong-twice (and a wrong value stated twice)." };
        var output = new Option<string>("--out") { Required = true, Description = "Output JSON file." };
        split.AcceptOnlyFromAmong("train", "test");
        repetition.AcceptOnlyFromAmong("as-drawn", "gold-once", "wrong-twice");
        var command = new Command("generate", "Write generated reader items (ALCE JSON with gold_citations).") { seed, split, count, unseen, repetition, output };
        command.SetAction(parse =>
        {
            var generator = new ReaderDataGenerator(parse.GetValue(seed), parse.GetRequiredValue(split) == "train" ? DataSplit.Train : DataSplit.Test,
                new ReaderDataShape
                {
                    UnseenValues = parse.GetValue(unseen),
                    Repetition = parse.GetRequiredValue(repetition) switch { "gold-once" => ValueRepetition.GoldOnce, "wrong-twice" => ValueRepetition.WrongTwice, _ => ValueRepetition.AsDrawn },
                });
            var items = generator.Generate(parse.GetValue(count)).ToList();
            var path = parse.GetRequiredValue(output);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            File.WriteAllText(path, JsonSerializer.Serialize(items, Indented));
            Console.Error.WriteLine($"wrote {items.Count} items to {path}");
            return 0;
        });
        return command;
    }
}
