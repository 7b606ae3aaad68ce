using Mirage.Core.Citations;

namespace Mirage.Core.Tests.Citations;

/// <summary>The filter and summing arithmetic of MIRAGE's last step, on hand-made scores.</summary>
public sealed class CitationBuilderTests
{
    // Prompt positions 0..9: passage A = [1, 4), passage B = [4, 7), passage C = [7, 9); 0 and 9 are template.
    private static readonly PassageSpan[] Passages = [new("a", 0, null, null, 1, 4, 0, 0), new("b", 1, null, null, 4, 7, 0, 0), new("c", 2, null, null, 7, 9, 0, 0)];
    private static readonly SentenceSpan[] Sentences = [new(0, 5, "First"), new(6, 12, "Second")];

    private static AnswerToken Token(int index, int sentence, double cti, bool selected = true) =>
        new(index, 100 + index, $"t{index}", 0, 1, cti, selected, 0, "", sentence, false);

    private static IReadOnlyList<CitedSentence> Build(Dictionary<int, float[]> cues, CitationOptions options, params AnswerToken[] tokens) =>
        CitationBuilder.Build(Sentences, tokens, cues, Passages, options);

    [Fact]
    public void TopPercent_IsARangeThresholdOverPassageTokensOnly()
    {
        // Position 0 (template) has the largest score but is not in any passage, so it neither
        // counts nor sets the range: max 10, min 0 over passage tokens, 5% keeps >= 9.5.
        var cues = new Dictionary<int, float[]> { [0] = [50, 0, 10, 9.6f, 9.4f, 1, 0, 2, 9.5f, 40] };
        var sentence = Build(cues, new CitationOptions(), Token(0, 0, 1))[0];
        Assert.Equal(["a", "c"], sentence.Citations.Select(c => c.PassageId));
        Assert.Equal(10 + 9.6, sentence.Citations[0].Score, 1e-5);
        Assert.Equal(9.5, sentence.Citations[1].Score, 1e-5);
    }

    [Fact]
    public void TopK_KeepsTheKLargest_AndMean_KeepsThoseAboveTheMean()
    {
        var cues = new Dictionary<int, float[]> { [0] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0] };
        var topTwo = Build(cues, new CitationOptions { Filter = CciFilter.TopK, TopK = 2 }, Token(0, 0, 1))[0];
        Assert.Equal(["c"], topTwo.Citations.Select(c => c.PassageId)); // 8 and 7 are both in C
        Assert.Equal(15, topTwo.Citations[0].Score, 1e-6);
        var mean = Build(cues, new CitationOptions { Filter = CciFilter.Mean }, Token(0, 0, 1))[0]; // mean of 1..8 = 4.5
        Assert.Equal(["c", "b"], mean.Citations.Select(c => c.PassageId));
        Assert.Equal(5 + 6, mean.Citations[1].Score, 1e-6);
    }

    [Fact]
    public void SentenceSumsItsSelectedTokens_AndCapsCitations()
    {
        var cues = new Dictionary<int, float[]>
        {
            [0] = [0, 9, 0, 0, 0, 0, 0, 0, 0, 0],
            [1] = [0, 0, 0, 0, 5, 0, 0, 0, 0, 0],
            [2] = [0, 0, 0, 0, 0, 0, 0, 3, 0, 0],
            [3] = [0, 0, 0, 0, 0, 0, 0, 0, 7, 0],
        };
        var tokens = new[] { Token(0, 0, 3), Token(1, 0, 2), Token(2, 0, 1), Token(3, 1, 1), Token(4, 1, 0, selected: false) };
        var all = Build(cues, new CitationOptions { AtMostCitations = null }, tokens);
        Assert.Equal(["a", "b", "c"], all[0].Citations.Select(c => c.PassageId));
        Assert.Equal([0, 1, 2], all[0].Citations.Select(c => c.Triggers.Single().TokenIndex));
        Assert.Equal(["c"], all[1].Citations.Select(c => c.PassageId));
        var capped = Build(cues, new CitationOptions { AtMostCitations = 2 }, tokens);
        Assert.Equal(["a", "b"], capped[0].Citations.Select(c => c.PassageId));
    }

    [Fact]
    public void SentenceWithoutSelectedTokens_CitesNothing()
    {
        var cues = new Dictionary<int, float[]> { [0] = [0, 9, 0, 0, 0, 0, 0, 0, 0, 0] };
        var sentences = Build(cues, new CitationOptions(), Token(0, 0, 3), Token(1, 1, 0.1, selected: false));
        Assert.Empty(sentences[1].Citations);
    }

    [Fact]
    public void Options_OutOfRange_AreRejected()
    {
        Assert.Contains("TopPercent", Assert.Throws<MirageException>(() => new CitationOptions { TopPercent = 0 }.Validate()).Message);
        Assert.Contains("TopK", Assert.Throws<MirageException>(() => new CitationOptions { TopK = 0 }.Validate()).Message);
        Assert.Contains("AtMostCitations", Assert.Throws<MirageException>(() => new CitationOptions { AtMostCitations = 0 }.Validate()).Message);
        Assert.Contains("{passages}", Assert.Throws<MirageException>(() => new CitationOptions { Prompt = new PromptTemplate { Template = "{question}" } }.Validate()).Message);
    }
}
