using Mirage.Core.Citations;
using Mirage.Eval.Data;

namespace Mirage.SemanticKernel.Tests;

/// <summary>Checks that citations are well-formed and point at the passages that hold the facts.</summary>
internal static class CitationAssertions
{
    /// <summary>
    /// The answer is the item's gold answer, the citations were computed, every span indexes the
    /// answer, every sentence stating a fact cites the passage(s) holding it and no other, and the
    /// sentence needing no passage cites nothing.
    /// </summary>
    public static void CitesTheGoldPassages(AnswerCitations? citations, AlceItem item, string answer)
    {
        Assert.NotNull(citations);
        Assert.True(citations.Status == CitationStatus.Cited, citations.Reason);
        Assert.Equal(item.Output, answer.Trim());
        Assert.Equal(answer, citations.Answer);
        Assert.Equal(item.GoldCitations!.Count, citations.Sentences.Count);
        for (int s = 0; s < citations.Sentences.Count; s++)
        {
            var sentence = citations.Sentences[s];
            Assert.Equal(sentence.Text, answer[sentence.Start..sentence.End]);
            var cited = sentence.Citations.Select(c => c.PassageIndex).ToList();
            var gold = item.GoldCitations[s];
            if (gold.Length == 0)
                Assert.Empty(cited);
            else
                Assert.True(cited.Count > 0 && cited.All(gold.Contains), $"sentence '{sentence.Text}' cites [{string.Join(",", cited)}], gold [{string.Join(",", gold)}]");
            // Passages keep their retrieval order, so indices match the item's documents.
            Assert.All(sentence.Citations, c => Assert.Equal(item.Docs[c.PassageIndex].Text, citations.PassageOf(c).Text));
        }
    }
}
