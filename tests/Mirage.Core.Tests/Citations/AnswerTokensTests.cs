using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Citations;

/// <summary>
/// Which tokens an answer is cited as: a supplied answer's surrounding whitespace is not tokenised,
/// and an answer Mirage generated is cited as the ids it generated (on the real stories260K model).
/// </summary>
public sealed class AnswerTokensTests
{
    private static readonly CancellationToken Token = TestContext.Current.CancellationToken;

    private static (LanguageModel Model, MirageCitationEngine Engine) Load()
    {
        var model = LanguageModel.Load(SharedAssets.Stories260KHf);
        return (model, new MirageCitationEngine(model, defaults: new CitationOptions { Prompt = Stories260KCitationTests.StoryPrompt }));
    }

    private static Task<CitationResult> Cite(MirageCitationEngine engine, string answer, IReadOnlyList<int>? ids = null) =>
        engine.CiteAsync(new CitationRequest("One day,", Stories260KCitationTests.PassagesWithTimAt(1), answer, AnswerTokenIds: ids), Token);

    [Fact]
    public async Task SurroundingWhitespace_OfASuppliedAnswer_ChangesNoScore_AndSpansIndexTheTextAsGiven()
    {
        var (model, engine) = Load();
        using var _ = model;
        const string answer = "Tim went to the park with his red kite. Tim was very happy.";
        var plain = await Cite(engine, answer);
        var padded = await Cite(engine, "  " + answer + " \n");
        Assert.Equal(plain.Tokens.Select(t => (t.Id, t.Text, t.Cti, t.Selected)), padded.Tokens.Select(t => (t.Id, t.Text, t.Cti, t.Selected)));
        Assert.Equal(plain.Tokens.Select(t => t.Start + 2), padded.Tokens.Select(t => t.Start));
        Assert.Equal(plain.Sentences.Select(s => s.Citations.Select(c => c.PassageId)), padded.Sentences.Select(s => s.Citations.Select(c => c.PassageId)));
        Assert.All(padded.Sentences, s => Assert.Equal(s.Text, padded.Answer[s.Start..s.End]));
    }

    [Fact]
    public async Task AGeneratedAnswer_IsCitedAsItsOwnIds_EvenWhereTheTextWouldTokeniseOtherwise()
    {
        var (model, engine) = Load();
        using var _ = model;
        var tokenizer = model.Tokenizer;
        const string answer = "Tim went to the park.";
        var canonical = tokenizer.EncodeContinuation(answer).Select(t => t.Id).ToList();
        // The same text as other ids, as sampling can produce: "Tim" spelled letter by letter.
        var spelled = tokenizer.EncodeContinuation("Tim").Count == 1 && tokenizer.IdOf("▁T") is int t && tokenizer.IdOf("i") is int i && tokenizer.IdOf("m") is int m
            ? new List<int> { t, i, m }.Concat(canonical.Skip(1)).ToList()
            : throw new InvalidOperationException("expected 'Tim' to be one token");
        Assert.Equal(answer, tokenizer.DecodeContinuation(model.Tokenizer.EncodeIds("x"), spelled).Trim());

        var cited = await Cite(engine, answer, spelled);
        Assert.Equal(spelled, cited.Tokens.Select(x => x.Id));
        Assert.Equal(["T", "i", "m"], cited.Tokens.Take(3).Select(x => x.Text));
        Assert.All(cited.Tokens, x => Assert.Equal(answer[x.Start..x.End], x.Text));
        // What generation adds after the answer (a stop string, end of sequence) is left out.
        var withEos = await Cite(engine, answer, [.. canonical, tokenizer.EosIds[0]]);
        Assert.Equal(canonical, withEos.Tokens.Select(x => x.Id));
        Assert.Equal((await Cite(engine, answer)).Tokens.Select(x => x.Cti), withEos.Tokens.Select(x => x.Cti));
    }
}
