using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Citations;

/// <summary>A request's model work is bounded before it runs: the bounds hold against the passes really run, and work past the budget never starts.</summary>
public sealed class CitationBudgetTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grouscelford.", 3, false, false)]
    [InlineData("Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grouscelford. Caszais Rourti works for Dreinkai Systems.", 5, true, true)]
    public async Task TheAblationBound_IsAtLeastThePassesRun(string answer, int atMost, bool verify, bool evidence)
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var options = new CitationOptions { AtMostCitations = atMost, Verify = verify ? new VerificationOptions() : null } is var o ? o with { Ablation = o.Ablation with { Evidence = evidence } } : null!;
        var passages = ReaderSample.Passages();
        var result = await new MirageCitationEngine(model).CiteAsync(new CitationRequest(ReaderSample.Question, passages, answer, options), Token);

        var input = PreparedCitation.Prepare(model, ReaderSample.Question, passages.Select((p, i) => p with { Id = p.Id ?? (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) }).ToList(), answer, options.Prompt);
        long length = input.PromptIds.Length + input.AnswerTokens.Count;
        long boundPasses = CitationBudget.Ablation(input, passages.Select(p => p.Text).ToList(), options) / length;
        // Forward passes beyond CTI's two are ablation's and verification's.
        Assert.InRange(result.Cost.ForwardPasses - 2, 1, boundPasses);
    }

    [Fact]
    public async Task CciPastTheBudget_IsRefusedBeforeItRuns_AndWithinItRuns()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var engine = new MirageCitationEngine(model);
        var greedy = new CitationOptions().WithMethod("integrated_gradients") is var o ? o with { Pecore = o.Pecore with { CtiStdThreshold = -5 }, MaxTokenPasses = 200_000 } : null!;
        var request = new CitationRequest(ReaderSample.Question, ReaderSample.Passages(), "Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grouscelford.", greedy);

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<CitationBudgetExceededException>(() => engine.CiteAsync(request, Token));
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(error.Message, @"^CCI by integrated_gradients on the \d+ answer tokens CTI selected \(of \d+\), over \d+ input tokens, would take up to [\d,]+ token-passes, more than the [\d,]+ left of the request's budget"), error.Message);
        Assert.InRange(watch.Elapsed.TotalSeconds, 0, 10);

        // Saliency on the same tokens is within it.
        var cheap = greedy.WithMethod("saliency");
        var result = await engine.CiteAsync(request with { Options = cheap }, Token);
        Assert.True(result.Cost.BackwardPasses > 0);
    }

    [Fact]
    public async Task AblationPastTheBudget_IsRefusedBeforeAnyPass()
    {
        using var model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        var options = new CitationOptions { MaxTokenPasses = 1_000 };
        var error = await Assert.ThrowsAsync<CitationBudgetExceededException>(() => new MirageCitationEngine(model).CiteAsync(
            new CitationRequest(ReaderSample.Question, ReaderSample.Passages(), "Lousdrur Rourti works for Cimgun Labs.", options), Token));
        Assert.Contains("Citing 1 sentence against 4 passages by ablation would take up to", error.Message);
        Assert.Contains("over the budget of 1,000", error.Message);
    }
}
