using System.CommandLine;
using System.Text.Json;
using Mirage.Eval.Data;

var generate = new Command("generate", "Write generated reader items (ALCE JSON with gold_citations).");
var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1, Description = "Seed; the same seed gives the same items." };
var split = new Option<string>("--split") { DefaultValueFactory = _ => "test", Description = "train or test." };
var count = new Option<int>("--count") { DefaultValueFactory = _ => 500, Description = "Number of items." };
var output = new Option<string>("--out") { Required = true, Description = "Output JSON file." };
split.AcceptOnlyFromAmong("train", "test");
generate.Options.Add(seed);
generate.Options.Add(split);
generate.Options.Add(count);
generate.Options.Add(output);
generate.SetAction(parse =>
{
    var generator = new ReaderDataGenerator(parse.GetValue(seed), parse.GetRequiredValue(split) == "train" ? DataSplit.Train : DataSplit.Test);
    var items = generator.Generate(parse.GetValue(count)).ToList();
    var path = parse.GetRequiredValue(output);
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    File.WriteAllText(path, JsonSerializer.Serialize(items, new JsonSerializerOptions { WriteIndented = true }));
    Console.Error.WriteLine($"wrote {items.Count} items to {path}");
    return 0;
});
var score = new Command("score-reader", "Greedy answers of a reader model on generated test items, scored fact by fact.");
var model = new Option<string>("--model") { Required = true, Description = "The reader checkpoint folder." };
var items = new Option<int>("--count") { DefaultValueFactory = _ => 200, Description = "Test items." };
var scoreSeed = new Option<int>("--seed") { DefaultValueFactory = _ => 1, Description = "Seed of the test items." };
score.Options.Add(model);
score.Options.Add(items);
score.Options.Add(scoreSeed);
score.SetAction(parse =>
{
    var result = Mirage.Eval.Reader.ReaderTraining.Score(parse.GetRequiredValue(model),
        new ReaderDataGenerator(parse.GetValue(scoreSeed), DataSplit.Test).Generate(parse.GetValue(items)));
    Console.WriteLine($"items {result.Items}: all facts right {result.Exact} ({(double)result.Exact / result.Items:P1}); "
        + $"facts {result.Facts}: value present {result.ValuesRight} ({(double)result.ValuesRight / result.Facts:P1}), entity name present {result.EntitiesRight} ({(double)result.EntitiesRight / result.Facts:P1}); "
        + $"never-seen city values {result.UnseenValuesRight}/{result.UnseenFacts}");
    return 0;
});
var root = new RootCommand("Mirage evaluation: reader data and citation-quality harness") { generate, score };
return root.Parse(args).Invoke();
