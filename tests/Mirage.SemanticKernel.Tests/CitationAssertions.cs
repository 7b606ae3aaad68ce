using Mirage.Core.Citations;
using Mirage.Eval.Data;

namespace Mirage.SemanticKernel.Tests;

/// <summary>Checks that the citations an integration attached are well-formed and are the engine's own.</summary>
internal static class CitationAssertions
{
    /// <summary>
    /// The citations were computed for this answer and the item's passages (in retrieval order),
    /// every span indexes the answer, and they are exactly what the engine computes for the same
    /// question, passages and answer: the integration neither loses nor invents a citation.
    /// </summary>
    public static async Task AreTheEnginesCitations(AnswerCitations? citations, ReaderFixture reader, AlceItem item, string answer)
    {
        Assert.NotNull(citations);
        Assert.True(citations.Status == CitationStatus.Cited, citations.Reason);
        Assert.False(string.IsNullOrWhiteSpace(answer));
        Assert.Equal(answer, citations.Answer);
        Assert.Equal(item.Docs.Select(d => d.Text), citations.Passages.Select(p => p.Text));
        foreach (var sentence in citations.Sentences)
            Assert.Equal(sentence.Text, answer[sentence.Start..sentence.End]);
        // An answer drawn from these passages cites one of them: agreeing on no citations at all proves nothing.
        Assert.NotEmpty(citations.Sentences.SelectMany(s => s.Citations));

        var direct = await reader.Engine.CiteAsync(new CitationRequest(item.Question, citations.Passages, answer), TestContext.Current.CancellationToken);
        Assert.Equal(Describe(direct.Sentences), Describe(citations.Sentences));
    }

    /// <summary>The citations teacher-forced the ids the model generated (the shortest prefix that spells the answer), not a re-tokenisation.</summary>
    public static void CiteTheGeneratedIds(AnswerCitations? citations, IReadOnlyList<int>? generated)
    {
        Assert.NotNull(generated);
        Assert.NotNull(citations?.Details);
        var cited = citations.Details.Tokens.Select(t => t.Id).ToList();
        Assert.NotEmpty(cited);
        Assert.Equal(generated.Take(cited.Count), cited);
    }

    private static string Describe(IEnumerable<CitedSentence> sentences) =>
        string.Join(" | ", sentences.Select(s => $"{s.Start}-{s.End}: " + string.Join(",", s.Citations.Select(c => $"{c.PassageIndex}@{c.Score:G6}"))));
}
