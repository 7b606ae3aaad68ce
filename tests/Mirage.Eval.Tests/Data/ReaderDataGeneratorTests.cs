using System.Text.Json;
using System.Text.Json.Nodes;
using Mirage.Core.Citations;
using Mirage.Eval.Data;

namespace Mirage.Eval.Tests.Data;

public sealed class ReaderDataGeneratorTests
{
    private static readonly IReadOnlyList<AlceItem> Test = new ReaderDataGenerator(1, DataSplit.Test).Generate(300).ToList();
    private static readonly IReadOnlyList<AlceItem> Train = new ReaderDataGenerator(1, DataSplit.Train).Generate(1000).ToList();

    [Fact]
    public void SameSeed_SameItems_OtherSeed_OtherItems()
    {
        var again = new ReaderDataGenerator(1, DataSplit.Test).Generate(300).ToList();
        Assert.Equal(JsonSerializer.Serialize(Test), JsonSerializer.Serialize(again));
        Assert.NotEqual(JsonSerializer.Serialize(Test.Take(5)), JsonSerializer.Serialize(new ReaderDataGenerator(2, DataSplit.Test).Generate(5)));
    }

    [Fact]
    public void Gold_EveryGoldPassageHoldsTheSentence_AndNoOtherPassageDoes()
    {
        foreach (var item in Test.Concat(Train.Take(300)))
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
                    // No other passage pairs the entity with the value in any wording.
                    if (fact is not null && !item.GoldCitations[s].Contains(p))
                        Assert.False(item.Docs[p].Text.Contains(fact.Entity + " ") && item.Docs[p].Text.Contains(fact.Value), $"{item.Id}: passage {p} holds '{fact.Entity}' and '{fact.Value}'");
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
            var entity = item.Facts!.First()!.Entity;
            // Always a distractor whose name is one letter away.
            Assert.Contains(item.Docs, d => d.Title != entity && d.Title.Length == entity.Length && d.Title.Zip(entity).Count(c => c.First != c.Second) == 1);
        });
        // Mostly also a passage that mentions the entity but holds none of its facts (small items have no room).
        Assert.True(Test.Count(item => item.Docs.Any(d => d.Text.Contains($"met {item.Facts![0]!.Entity} at a market"))) > Test.Count * 0.8);
        Assert.Contains(Test, item => item.Facts!.Contains(null));
        Assert.Contains(Test, item => item.GoldCitations!.Any(g => g.Length == 2));
        Assert.Contains(Test, item => item.Facts!.Select(f => f?.Entity).Distinct().Count(e => e is not null) == 2);
    }

    [Fact]
    public void NoTestFactOccursInTraining_AndUnseenValuesOnlyInTest()
    {
        var trainText = string.Join("\n", Train.SelectMany(i => i.Docs.Select(d => d.Text).Append(i.Output)));
        foreach (var fact in Test.SelectMany(i => i.Facts!).OfType<Fact>())
            Assert.DoesNotContain(fact.Entity, trainText);
        var unseen = Test.Where(i => i.UnseenValues).SelectMany(i => i.Facts!).OfType<Fact>().Where(f => f.Attribute == "city").Select(f => f.Value).Distinct().ToList();
        Assert.NotEmpty(unseen);
        Assert.All(unseen, city => Assert.DoesNotContain(city, trainText));
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
