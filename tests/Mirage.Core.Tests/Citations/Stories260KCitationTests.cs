using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Citations;

/// <summary>MIRAGE end to end on the real stories260K model.</summary>
public sealed class Stories260KCitationTests
{
    // One passage names the character; the distractors are story sentences without a name.
    internal static readonly Passage Tim = new("tim", "Tim", "Tim has a red kite. He likes to fly it in the park.");
    internal static readonly Passage[] Distractors =
    [
        new("dog", "Dog", "A big dog liked to run in the garden. It had a ball."),
        new("cat", "Cat", "The sun was warm. A small cat slept on the bed."),
    ];

    // TinyStories prose: the passages are the story so far and the answer continues it. Without
    // them the story reads on from "friends." with one space, as prose does (the trim rule; the
    // literal one would leave " \n" there).
    internal static readonly PromptTemplate StoryPrompt = new()
    {
        NoContext = NoContextRule.Trim,
        Template = "Once upon a time, there were three friends. {passages}\n{question}",
        PassageTemplate = "{text}",
        UntitledPassageTemplate = "{text}",
        PassageSeparator = " ",
    };

    internal static IReadOnlyList<Passage> PassagesWithTimAt(int index)
    {
        var passages = Distractors.ToList();
        passages.Insert(index, Tim);
        return passages;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public async Task NameFromAPassage_IsSelectedByCti_AndCitedToThatPassageOnly(int timAt)
    {
        using var model = LanguageModel.Load(SharedAssets.Stories260KHf);
        var engine = new MirageCitationEngine(model, defaults: new CitationOptions { Prompt = StoryPrompt, Method = CitationMethod.Cci });
        var result = await engine.CiteAsync(new CitationRequest("One day,", PassagesWithTimAt(timAt), "Tim went to the park with his red kite. Tim was very happy."),
            TestContext.Current.CancellationToken);

        var name = result.Tokens[0];
        Assert.Equal("Tim", name.Text);
        Assert.True(name.Selected, $"CTI {name.Cti} vs threshold {result.CtiThreshold}");
        Assert.Equal(name.Cti, result.Tokens.Max(t => t.Cti));
        var citation = Assert.Single(result.Sentences[0].Citations);
        Assert.Equal("tim", citation.PassageId);
        Assert.Equal(timAt, citation.PassageIndex);
        Assert.Contains(citation.Triggers, t => t.TokenIndex == 0);

        // Cost: two teacher-forced passes for CTI, one shared forward for CCI, one backward per selected token.
        int selected = result.Tokens.Count(t => t.Selected);
        Assert.Equal(3, result.Cost.ForwardPasses);
        Assert.Equal(selected, result.Cost.BackwardPasses);
        Assert.Equal(selected, result.Cues.Count);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public async Task Ablation_CitesThePassageThatNamesTheCharacter_WithForwardPassesOnly(int timAt)
    {
        using var model = LanguageModel.Load(SharedAssets.Stories260KHf);
        var engine = new MirageCitationEngine(model, defaults: new CitationOptions { Prompt = StoryPrompt });
        var result = await engine.CiteAsync(new CitationRequest("One day,", PassagesWithTimAt(timAt), "Tim went to the park with his red kite."),
            TestContext.Current.CancellationToken);

        Assert.Equal(CitationMethod.Ablation, result.Options.Method);
        var citation = Assert.Single(Assert.Single(result.Sentences).Citations);
        Assert.Equal(timAt, citation.PassageIndex);
        var measured = Assert.Single(result.Ablation!);
        // Removing Tim's passage costs the sentence far more than removing any other.
        Assert.Equal(timAt, Enumerable.Range(0, 3).MaxBy(p => measured.PassageDrops[p]));
        Assert.True(measured.PassageDrops[timAt] > 5 * measured.PassageDrops.Where((_, p) => p != timAt).Max(Math.Abs), string.Join(", ", measured.PassageDrops));
        Assert.Equal(measured.PassageDrops[timAt], measured.CitedDrop, 1e-9);
        Assert.Contains(citation.Triggers, t => t.TokenIndex == 0 && t.Score > 1);
        Assert.Equal(0, result.Cost.BackwardPasses);
        Assert.Empty(result.Cues);

        // CTI reads the with-context logits of ablation's full pass: the same scores as its own two passes.
        var mirage = await engine.CiteAsync(new CitationRequest("One day,", PassagesWithTimAt(timAt), "Tim went to the park with his red kite.",
            new CitationOptions { Prompt = StoryPrompt, Method = CitationMethod.Cci }), TestContext.Current.CancellationToken);
        Assert.Equal(mirage.Tokens.Select(t => t.Cti), result.Tokens.Select(t => t.Cti), (a, b) => Math.Abs(a - b) < 1e-5);
        Assert.Equal(mirage.Tokens.Select(t => t.Selected), result.Tokens.Select(t => t.Selected));
        Assert.Equal(mirage.Tokens.Select(t => t.ContrastId), result.Tokens.Select(t => t.ContrastId));
    }

    [Fact]
    public async Task Result_RecordsExactInputsSoOthersCanRecompute()
    {
        using var model = LanguageModel.Load(SharedAssets.Stories260KHf);
        var engine = new MirageCitationEngine(model, defaults: new CitationOptions { Prompt = StoryPrompt });
        const string answer = "Tim went to the park.";
        var result = await engine.CiteAsync(new CitationRequest("One day,", PassagesWithTimAt(0), answer), TestContext.Current.CancellationToken);

        var inputs = result.Inputs;
        Assert.Equal(model.Tokenizer.EncodeIds(inputs.WithContextPrompt), inputs.WithContextIds.Take(inputs.WithContextAnswerStart));
        Assert.Equal(result.Tokens.Select(t => t.Id), inputs.WithContextIds.Skip(inputs.WithContextAnswerStart));
        Assert.Equal(result.Tokens.Select(t => t.Id), inputs.NoContextIds.Skip(inputs.NoContextAnswerStart));
        Assert.DoesNotContain("Tim has", model.Tokenizer.Decode(inputs.NoContextIds));
        Assert.All(result.Tokens, t => Assert.Equal(answer[t.Start..t.End], t.Text));
        var tim = result.Passages[0];
        var passageText = model.Tokenizer.Decode(inputs.WithContextIds.Skip(tim.TokenStart).Take(tim.TokenEnd - tim.TokenStart));
        Assert.Equal(Tim.Text, passageText.Trim());
        Assert.All(result.Cues, c => Assert.Equal(inputs.WithContextAnswerStart, c.Scores.Length));
    }
}
