using Mirage.Core.Models;

namespace Mirage.Core.Tests.Models;

/// <summary>The family table is the one place a family's names and facts live: every reader and writer agrees with it.</summary>
public sealed class ModelFamilyTests
{
    public static TheoryData<string> Architectures => new(ModelFamily.All.Select(f => f.Architecture));

    [Theory]
    [MemberData(nameof(Architectures))]
    public void AConfigOfEachFamily_ReadsBackAsThatFamily_WithItsFacts(string architecture)
    {
        var family = ModelFamily.ByArchitecture(architecture)!;
        var config = ModelConfig.Parse(TinyCheckpoint.Config(architecture).ToJson());
        Assert.Same(family, ModelFamily.Of(config));
        Assert.Contains($"\"model_type\":\"{family.ModelType}\"", config.ToJson().Replace(" ", "", StringComparison.Ordinal));
        Assert.Equal(family.QkNorm, config.QkNorm);
        Assert.Equal(family.FusedProjections, config.FusedProjections);
        Assert.Equal(family.Gemma ? 1 : 0, config.NormOffset);
        Assert.True(!family.QkvBias || config.QkvBias);
    }

    [Fact]
    public void EachGgufArchitecture_LoadsAsExactlyOneFamily()
    {
        foreach (var name in ModelFamily.All.Select(f => f.GgufArchitecture).Distinct())
            Assert.Single(ModelFamily.All, f => f.ReadsGguf && f.GgufArchitecture == name);
        Assert.Equal("LlamaForCausalLM", ModelFamily.ByGgufArchitecture("llama")!.Architecture);
        Assert.Null(ModelFamily.ByGgufArchitecture("mamba"));
        Assert.Equal(ModelFamily.All.Select(f => f.Architecture), ModelConfig.SupportedArchitectures);
    }
}
