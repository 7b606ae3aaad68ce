using Mirage.Core.Citations;

namespace Mirage.Core.Tests.Citations;

/// <summary>One spelling table and one parser for the settings every front end accepts.</summary>
public sealed class CitationSettingNamesTests
{
    [Fact]
    public void BothSpellings_NameTheSameSetting_AndUnknownNamesListTheChoices()
    {
        Assert.Equal(CciFilter.TopK, CitationSettingNames.Apply(new CitationOptions(), filter: "top-k").Filter);
        Assert.Equal(CciFilter.TopK, CitationSettingNames.Apply(new CitationOptions(), filter: "top_k").Filter);
        Assert.Equal("Unknown filter 'best'; use top_percent, top_k or mean.", Assert.Throws<MirageException>(() => CitationSettingNames.Apply(new CitationOptions(), filter: "best")).Message);
        Assert.Equal("Unknown no_context 'x'; use literal or trim.", Assert.Throws<MirageException>(() => CitationSettingNames.Apply(new CitationOptions(), noContext: "x")).Message);
        Assert.Contains("Unknown method 'magic'", Assert.Throws<MirageException>(() => CitationSettingNames.Apply(new CitationOptions(), method: "magic")).Message);
    }

    [Fact]
    public void GivenSettingsReplaceTheDefaults_OthersStay_AndTheWholeIsChecked()
    {
        var defaults = new CitationOptions { AtMostCitations = 2 };
        var options = CitationSettingNames.Apply(defaults, method: "saliency", ctiStd: 0.5, verify: true, scoredTokens: "selected");
        Assert.Equal(("saliency", 0.5, 2, ScoredTokens.Selected), (options.MethodName, options.Pecore.CtiStdThreshold, options.AtMostCitations, options.Ablation.Tokens));
        Assert.NotNull(options.Verify);
        Assert.Null(CitationSettingNames.Apply(options, verify: false).Verify);
        Assert.Contains("TopPercent must be in (0, 1]", Assert.Throws<MirageException>(() => CitationSettingNames.Apply(defaults, topPercent: 2)).Message);
    }
}
