using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Mirage.Core.Citations;
using Mirage.Eval.Data;
using Mirage.Eval.Reader;

namespace Mirage.Eval.Tests.Data;

public sealed class ReaderDataGeneratorTests
{
    private static readonly IReadOnlyList<AlceItem> Test = new ReaderDataGenerator(1, DataSplit.Test).Generate(300).ToList();
    private static readonly IReadOnlyList<AlceItem> Train = new ReaderDataGenerator(1, DataSplit.Train).Generate(1000).ToList();
    private static readonly IReadOnlyList<AlceItem> Unseen = new ReaderDataGenerator(1, DataSplit.Test, new ReaderDataShape { UnseenValues = true }).Generate(100).ToList();

    [Fact]
    public void SameSeed_SameItems_OtherSeed_OtherItems()
    {
        var again = new ReaderDataGenerator(1, DataSplit.Test).Generate(300).ToList();
        Assert.Equal(JsonSerializer.Serialize(Test), JsonSerializer.Serialize(again));
        Assert.NotEqual(JsonSerializer.Serialize(Test.Take(5)), JsonSerializer.Serialize(new ReaderDataGenerator(2, DataSplit.Test).Generate(5)));
        // The same in every process too (a per-process hash seed once made each run's items differ).
        Assert.Equal("Where was Brensein Zaisnouth born?", Test[0].Question);
    }

    [Fact]
    public void Gold_EveryGoldPassageHoldsTheSentence_AndNoOtherPassageDoes()
    {
        var small = new ReaderDataGenerator(1, DataSplit.Train, new ReaderDataShape { MinPassages = 1 }).Generate(300);
        var dense = new ReaderDataGenerator(1, DataSplit.Train, new ReaderDataShape { AskAllAttributesRate = 1 }).Generate(200).ToList();
        Assert.All(dense, item => Assert.True(item.Facts!.OfType<Fact>().Count() >= 2));
        var sameRelation = new ReaderDataGenerator(1, DataSplit.Train, new ReaderDataShape { SameRelationDistractorRate = 1 }).Generate(200);
        foreach (var item in Test.Concat(Train.Take(300)).Concat(Unseen).Concat(small).Concat(dense).Concat(sameRelation))
        {
            var sentences = SentenceSplitter.Split(item.Output);
            Assert.Equal(sentences.Count, item.GoldCitations!.Count);
            for (int s = 0; s < sentences.Count; s++)
            {
                var fact = item.Facts![s];
                for (int p = 0; p < item.Docs.Count; p++)
                {
                    bool holds = item.Docs[p].Text.Contains(sentences[s].Text, StringComparison.Ordinal);
                    Assert.Equal(holds, item.GoldCitations[s].Contains(p));
                    // No sentence of another passage pairs the entity with the value, in any wording.
                    if (fact is not null && !item.GoldCitations[s].Contains(p))
                        Assert.DoesNotContain(SentenceSplitter.Split(item.Docs[p].Text), d => d.Text.Contains(fact.Entity + " ") && d.Text.Contains(fact.Value));
                }
                if (fact is null)
                    Assert.Empty(item.GoldCitations[s]);
                else
                    Assert.NotEmpty(item.GoldCitations[s]);
            }
        }
    }

    [Fact]
    public void Items_HaveThreeToSixPassagesAndOneToThreeSentences_WithHardDistractors()
    {
        Assert.All(Test, item =>
        {
            Assert.InRange(item.Docs.Count, 3, 6);
            Assert.InRange(item.GoldCitations!.Count, 1, 3);
            var entity = item.Facts![0]!.Entity;
            // Always a distractor whose name shares one of the entity's two name words.
            Assert.Contains(item.Docs, d => d.Title != entity && d.Title.Split(' ').Length == 2 && d.Title.Split(' ').Intersect(entity.Split(' ')).Count() == 1);
        });
        // Mostly also a passage that mentions the entity but holds none of its facts (small items have no room),
        // often a lexical trap: it holds the entity's name and the value too, in different sentences.
        Assert.True(Test.Count(item => item.Docs.Any(d => d.Text.Contains($"{item.Facts![0]!.Entity} at a market") || d.Text.Contains($"worked with {item.Facts![0]!.Entity}."))) > Test.Count * 0.8);
        int traps = Test.Count(item => item.Docs.Where((d, p) => !item.GoldCitations![0].Contains(p))
            .Any(d => d.Text.Contains(item.Facts![0]!.Entity) && d.Text.Contains(item.Facts![0]!.Value)));
        Assert.InRange(traps, Test.Count / 4, Test.Count * 3 / 4);
        Assert.Contains(Test, item => item.Facts!.Contains(null));
        Assert.Contains(Test, item => item.GoldCitations!.Any(g => g.Length == 2));
        Assert.Contains(Test, item => item.Facts!.Select(f => f?.Entity).Distinct().Count(e => e is not null) == 2);
    }

    [Fact]
    public void NoTestFactOccursInTraining_AndUnseenValuesOnlyInTest()
    {
        var trainText = string.Join("\n", Train.SelectMany(i => i.Docs.Select(d => d.Text).Append(i.Output)));
        int Count(string pattern) => Regex.Count(trainText, pattern);
        // A test entity is never the subject of a training sentence: it occurs in training only as a
        // training person's employer (an organisation), or not at all (a person).
        var testEntities = Test.SelectMany(i => i.Facts!).OfType<Fact>().Select(f => f.Entity).Distinct().ToList();
        foreach (var entity in testEntities)
            Assert.Equal(Count($@"works for {Regex.Escape(entity)}\b"), Count($@"\b{Regex.Escape(entity)}\b"));
        // ...and test organisations do occur as training employers, so every employer is a familiar value.
        Assert.Contains(testEntities, entity => Count($@"works for {Regex.Escape(entity)}\b") > 0);
        Assert.All(Unseen, item => Assert.Contains(item.Facts!, f => f?.Attribute == "city"));
        var unseen = Unseen.SelectMany(i => i.Facts!).OfType<Fact>().Where(f => f.Attribute == "city").Select(f => f.Value).Distinct().ToList();
        Assert.True(unseen.Count > 5);
        Assert.All(unseen, city => Assert.DoesNotContain(city, trainText));
        Assert.DoesNotContain(Test, item => item.UnseenValues);
        Assert.All(Unseen, item => Assert.True(item.UnseenValues));
    }

    [Fact]
    public void SameRelationDistractors_StateTheAskedRelationForSimilarNames()
    {
        var items = new ReaderDataGenerator(3, DataSplit.Train, new ReaderDataShape { MinPassages = 5, MaxPassages = 6, SameRelationDistractorRate = 1 }).Generate(100).ToList();
        foreach (var item in items)
        {
            var fact = item.Facts![0]!;
            var words = fact.Entity.Split(' ');
            // Passages about another name sharing a word with the entity, stating the asked relation with another value.
            int confusable = item.Docs.Count(d => d.Title is { } title && title != fact.Entity && title.Split(' ').Intersect(words).Any()
                && SentenceSplitter.Split(d.Text).Any(s => s.Text.StartsWith(title, StringComparison.Ordinal) && Relation(fact.Attribute).Any(s.Text.Contains) && !s.Text.Contains(fact.Value)));
            // All but the fact passages and the mention passage.
            int facts = item.Facts!.OfType<Fact>().Select(f => f.Entity).Distinct().Count();
            Assert.True(confusable >= item.Docs.Count - facts - 1 - item.Docs.Count(d => d.Title == $"Notes on {fact.Entity}"), $"{item.Id}: {confusable} of {item.Docs.Count}");
        }
        // The default shape is unchanged by the option's existence: the same seed gives the same items.
        Assert.Equal(JsonSerializer.Serialize(Test.Take(20)), JsonSerializer.Serialize(new ReaderDataGenerator(1, DataSplit.Test, new ReaderDataShape { SameRelationDistractorRate = 0 }).Generate(20)));
    }

    [Fact]
    public void Repetition_GoldOnceKeepsAskedValuesInTheirFactPassages_WrongTwiceAlsoStatesAWrongValueTwice()
    {
        // As drawn, the lexical trap repeats the first asked value outside its fact passages in many items.
        Assert.True(Test.Count(i => Outside(i, i.Facts![0]!, i.GoldCitations![0]) > 0) > Test.Count / 4);

        var goldOnce = new ReaderDataGenerator(1, DataSplit.Test, new ReaderDataShape { Repetition = ValueRepetition.GoldOnce }).Generate(200).ToList();
        var wrongTwice = new ReaderDataGenerator(1, DataSplit.Test, new ReaderDataShape { Repetition = ValueRepetition.WrongTwice }).Generate(200).ToList();
        Assert.All(goldOnce.Concat(wrongTwice), item => Assert.True(AskedValuesOnlyInGold(item)));
        Assert.All(wrongTwice, item => Assert.True(StatesAWrongValueTwice(item)));
        Assert.NotEqual(JsonSerializer.Serialize(goldOnce), JsonSerializer.Serialize(wrongTwice));
    }

    [Fact]
    public void WrongTwiceRate_DrawsAboutThatShareOfTrainingItemsAsWrongTwice()
    {
        static int WrongTwiceItems(double rate) => ReaderTraining.TrainingItems(new ReaderTrainingOptions { OutputDirectory = "unused", WrongTwiceRate = rate })
            .Take(400).Count(item => AskedValuesOnlyInGold(item) && StatesAWrongValueTwice(item));
        // As drawn, a wrong value stated twice with the asked ones only in gold is rare (chance overlaps of distractors).
        Assert.InRange(WrongTwiceItems(0), 0, 40);
        Assert.InRange(WrongTwiceItems(0.5), 160, 260);
        Assert.Throws<ArgumentException>(() => new ReaderDataGenerator(1, DataSplit.Train, new ReaderDataShape { WrongTwiceRate = 1.5 }));
    }

    [Fact]
    public void WrongTwiceFromStep_TrainsOnThePlainMixUntilThenAndOnTheResumedRunsItemsAfter()
    {
        static List<string> Items(double rate, int fromStep) => ReaderTraining.TrainingItems(new ReaderTrainingOptions { OutputDirectory = "unused", BatchSize = 4, WrongTwiceRate = rate, WrongTwiceFromStep = fromStep })
            .Take(80).Select(item => JsonSerializer.Serialize(item)).ToList();
        var switched = Items(0.5, fromStep: 10);
        // Steps 0-9 (40 items) match a plain run, later ones what a run resumed at step 10 with the rate sees.
        Assert.Equal(Items(0, 0).Take(40), switched.Take(40));
        Assert.Equal(Items(0.5, 0).Skip(40), switched.Skip(40));
        Assert.NotEqual(Items(0, 0).Skip(40), switched.Skip(40));
    }

    [Fact]
    public void AbstainRate_LeavesOutTheAskedEntitysFacts_KeepsItsTrap_AndAnswersThatThePassagesDoNotSay()
    {
        static List<AlceItem> Items(double rate) => ReaderTraining.TrainingItems(new ReaderTrainingOptions { OutputDirectory = "unused", WrongTwiceRate = 0.5, AbstainRate = rate }).Take(300).ToList();
        var abstaining = Items(0.3).Where(item => item.Output.Contains("The passages do not say", StringComparison.Ordinal)).ToList();
        Assert.InRange(abstaining.Count, 60, 120);
        foreach (var item in abstaining)
        {
            var sentences = SentenceSplitter.Split(item.Output).Select(s => s.Text).ToList();
            var unstated = sentences.Select((text, i) => (text, i)).Where(s => s.text.StartsWith("The passages do not say", StringComparison.Ordinal)).ToList();
            // The main entity: named in every unstated sentence; none of its facts is in any passage, and nothing is cited for them.
            var main = item.Docs.Select(d => d.Title).First(title => unstated[0].text.Contains(title!, StringComparison.Ordinal))!;
            Assert.All(unstated, s => Assert.Empty(item.GoldCitations![s.i]));
            Assert.All(unstated, s => Assert.Null(ReaderDataGenerator.ReadFact(s.text)));
            Assert.DoesNotContain(item.Docs.SelectMany(d => SentenceSplitter.Split(d.Text)), s => ReaderDataGenerator.ReadFact(s.Text)?.Entity == main);
            // Its trap stays: a passage under its name whose facts belong to another entity.
            Assert.Contains(item.Docs, d => d.Title == main && d.Text.Contains(main, StringComparison.Ordinal));
        }
        // Off by default, and items of the default shape are as they were.
        Assert.Equal(Items(0).Select(item => JsonSerializer.Serialize(item)), ReaderTraining.TrainingItems(new ReaderTrainingOptions { OutputDirectory = "unused", WrongTwiceRate = 0.5 }).Take(300).Select(item => JsonSerializer.Serialize(item)));
        Assert.DoesNotContain(Items(0), item => item.Output.Contains("The passages do not say", StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => new ReaderDataGenerator(1, DataSplit.Train, new ReaderDataShape { AbstainRate = -0.1 }));
    }

    private static int Outside(AlceItem item, Fact fact, int[] gold) =>
        Enumerable.Range(0, item.Docs.Count).Count(d => !gold.Contains(d) && item.Docs[d].Text.Contains(fact.Value, StringComparison.Ordinal));

    private static bool AskedValuesOnlyInGold(AlceItem item) =>
        item.Facts!.Zip(item.GoldCitations!).All(pair => pair.First is not { } fact || Outside(item, fact, pair.Second) == 0);

    // The same statement (all but its two-word subject) with the first asked relation and another value, in two passages.
    private static bool StatesAWrongValueTwice(AlceItem item)
    {
        var first = item.Facts![0]!;
        var statements = item.Docs.SelectMany((d, index) => SentenceSplitter.Split(d.Text)
            .Where(s => Relation(first.Attribute).Any(s.Text.Contains) && !s.Text.Contains(first.Value, StringComparison.Ordinal))
            .Select(s => (Passage: index, Predicate: string.Join(' ', s.Text.Split(' ').Skip(2)))));
        return statements.GroupBy(s => s.Predicate).Any(g => g.Select(s => s.Passage).Distinct().Count() >= 2);
    }

    private static string[] Relation(string attribute) => attribute switch
    {
        "city" => ["was born in", "is based in"],
        "profession" => ["works as"],
        "employer" => ["works for"],
        _ => ["industry"],
    };

    [Fact]
    public void PassagesOfAnItem_AreDistinct()
    {
        Assert.All(Test.Concat(Train).Concat(Unseen), item =>
        {
            Assert.Equal(item.Docs.Count, item.Docs.Select(d => d.Text).Distinct().Count());
        });
    }

    [Fact]
    public void ShapeControlsPassageCount_AndBadShapesAreRejected()
    {
        var small = new ReaderDataGenerator(4, DataSplit.Train, new ReaderDataShape { MinPassages = 1, MaxPassages = 2 }).Generate(200).ToList();
        Assert.All(small, item => Assert.InRange(item.Docs.Count, 1, 3)); // fact passages always stay
        Assert.Contains(small, item => item.Docs.Count == 1);
        Assert.Throws<ArgumentException>(() => new ReaderDataGenerator(1, DataSplit.Test, new ReaderDataShape { MinPassages = 4, MaxPassages = 3 }));
        Assert.Throws<ArgumentException>(() => new ReaderDataGenerator(1, DataSplit.Train, new ReaderDataShape { UnseenValues = true }));
    }

    [Fact]
    public void Json_UsesAlceFieldNames()
    {
        var node = JsonNode.Parse(JsonSerializer.Serialize(Test[0]))!;
        foreach (var name in new[] { "question", "docs", "output", "gold_citations" })
            Assert.NotNull(node[name]);
        Assert.NotNull(node["docs"]![0]!["title"]);
        Assert.NotNull(node["docs"]![0]!["text"]);
    }
}
