using System.CommandLine;
using System.Text.Json;
using Mirage.Eval.Data;
using Mirage.Eval.Reader;

namespace Mirage.Eval.Cli;

/// <summary><c>mirage-eval score-reader</c>: greedy answers of a reader on generated test items, scored fact by fact.</summary>
internal static class ScoreReaderCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Required = true, Description = "The reader checkpoint folder." };
        var count = new Option<int>("--count") { DefaultValueFactory = _ => 500, Description = "Test items (a quarter as many never-seen-value items are scored too, and as many again in each value-repetition shape)." };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1, Description = "Seed of the test items." };
        var output = new Option<string?>("--out") { Description = "Also write each test item's answer and verdict as JSON lines to this file." };
        var command = new Command("score-reader", "Greedy answers of a reader model on generated test items, scored fact by fact.") { model, count, seed, output };
        command.SetAction(parse =>
        {
            int n = parse.GetValue(count);
            var byAttribute = new SortedDictionary<string, (int Right, int Total)>();
            using var lines = parse.GetValue(output) is { } path ? new StreamWriter(path) : null;
            var test = ReaderTraining.Score(parse.GetRequiredValue(model), new ReaderDataGenerator(parse.GetValue(seed), DataSplit.Test).Generate(n), (item, answer) =>
            {
                var facts = item.Facts!.OfType<Fact>().Select(f => (f.Attribute, f.Value, Stated: answer.Contains(f.Value, StringComparison.Ordinal))).ToList();
                foreach (var fact in facts)
                {
                    var (right, total) = byAttribute.GetValueOrDefault(fact.Attribute);
                    byAttribute[fact.Attribute] = (right + (fact.Stated ? 1 : 0), total + 1);
                }
                lines?.WriteLine(JsonSerializer.Serialize(new
                {
                    id = item.Id,
                    answer = answer.Trim(),
                    gold = item.Output,
                    all_facts_right = AnswerChecker.StatesAllFacts(answer, item),
                    facts = facts.Select(f => new { attribute = f.Attribute, value = f.Value, stated = f.Stated }),
                }));
            });
            Console.WriteLine($"test items {test.Items}: all facts right {test.Exact} ({(double)test.Exact / test.Items:P1}); "
                + $"facts {test.Facts}: value present {test.ValuesRight} ({(double)test.ValuesRight / test.Facts:P1}), entity name present {test.EntitiesRight} ({(double)test.EntitiesRight / test.Facts:P1})");
            Console.WriteLine("value present by attribute: " + string.Join(", ", byAttribute.Select(a => $"{a.Key} {a.Value.Right}/{a.Value.Total} ({(double)a.Value.Right / a.Value.Total:P0})")));
            var unseen = ReaderTraining.Score(parse.GetRequiredValue(model),
                new ReaderDataGenerator(parse.GetValue(seed), DataSplit.Test, new ReaderDataShape { UnseenValues = true }).Generate(Math.Max(1, n / 4)));
            Console.WriteLine($"never-seen city values: {unseen.UnseenValuesRight}/{unseen.UnseenFacts} ({(double)unseen.UnseenValuesRight / unseen.UnseenFacts:P1}); "
                + $"those items all facts right {unseen.Exact}/{unseen.Items}");
            // The same items' shape with the asked values' repetition controlled: a reader that binds
            // values to names scores alike on all three; one that counts values does not.
            var repetition = new[] { ValueRepetition.GoldOnce, ValueRepetition.WrongTwice }.Select(r => ReaderTraining.Score(parse.GetRequiredValue(model),
                new ReaderDataGenerator(parse.GetValue(seed), DataSplit.Test, new ReaderDataShape { Repetition = r }).Generate(n))).ToList();
            Console.WriteLine($"all facts right where values repeat: as drawn {(double)test.Exact / test.Items:P1}, "
                + $"asked values only in their fact passages {(double)repetition[0].Exact / repetition[0].Items:P1}, "
                + $"and a wrong value stated twice {(double)repetition[1].Exact / repetition[1].Items:P1}");
            return 0;
        });
        return command;
    }
}
