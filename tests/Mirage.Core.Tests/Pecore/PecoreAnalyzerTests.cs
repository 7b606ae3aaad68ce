using Mirage.Core.Attribution;
using Mirage.Core.Pecore;
using Mirage.Core.Tests.Models;
using Mirage.Tests;

namespace Mirage.Core.Tests.Pecore;

/// <summary>PECoRe on its own (<see cref="PecoreAnalyzer.Analyze"/>), as the library offers it: one answer equals a batch of one, and forced contrast tokens are used as given.</summary>
public sealed class PecoreAnalyzerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Analyze_EqualsTheBatch_AndForcedContrastsAreTheTargetsContrast()
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, TinyCheckpoint.Config()));
        var analyzer = new PecoreAnalyzer(AttributionEngine.CreateDefault());
        int[] context = [1, 17, 23, 42, 5, 99, 7], noContext = [1, 7], answer = [11, 12, 13];
        bool[] eligible = [true, true, true];
        var options = new PecoreOptions { CtiStdThreshold = -5 };

        var alone = analyzer.Analyze(model, context, noContext, answer, eligible, options);
        var batch = analyzer.AnalyzeBatch(model, [new PecoreAnswer(context, noContext, answer, eligible, options), new PecoreAnswer(context[..4], noContext, answer[..2], eligible[..2], options)]);
        Assert.Equal(alone.CtiScores, batch[0].CtiScores, (a, b) => Math.Abs(a - b) < 1e-9);
        Assert.Equal(alone.Selected, batch[0].Selected);
        Assert.All(alone.CciScores, cue => Assert.Equal(cue.Value, batch[0].CciScores[cue.Key], (a, b) => Math.Abs(a - b) < 1e-6));

        // Forcing each contrast to the answer token itself makes MIRAGE's contrastive target the
        // token's log-probability with the context minus without it.
        var forced = analyzer.Analyze(model, context, noContext, answer, eligible, options, forcedContrastIds: answer);
        Assert.Equal(answer, forced.ContrastIds);
        Assert.Equal(3, forced.CciTargetValues.Count);
        foreach (var (t, value) in forced.CciTargetValues)
            Assert.Equal(forced.ContextLogProbs[t] - forced.NoContextLogProbs[t], value, 1e-9);
        Assert.Contains("one per answer token (3), got 2", Assert.Throws<MirageException>(() => { analyzer.Analyze(model, context, noContext, answer, eligible, options, forcedContrastIds: answer[..2]); }).Message);
    }
}
