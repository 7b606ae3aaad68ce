using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Models;

/// <summary>The rules <c>--dtype auto</c> and <c>--engine auto</c> follow.</summary>
public sealed class ComputeOptionsTests
{
    private const string Avx2Only = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: fpu vme sse sse2 avx avx2 fma bmi2\n";
    private const string Avx512Bf16 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n";
    private const string AmxBf16 = "processor\t: 0\nflags\t\t: avx2 amx_tile amx_bf16 amx_int8\n";

    [Fact]
    public void NativeBFloat16_IsReadFromTheCpuFlags()
    {
        Assert.False(CpuFeatures.ReportsBFloat16(Avx2Only));
        Assert.True(CpuFeatures.ReportsBFloat16(Avx512Bf16));
        Assert.True(CpuFeatures.ReportsBFloat16(AmxBf16));
        Assert.False(CpuFeatures.ReportsBFloat16(""));
        // A flag's name inside another word is not the flag.
        Assert.False(CpuFeatures.ReportsBFloat16("flags\t: avx512_bf16x\nmodel name: avx512_bf16\n"));
    }

    [Theory]
    [InlineData(true, 896, ScalarType.BFloat16)]
    [InlineData(true, 512, ScalarType.BFloat16)]
    [InlineData(true, 128, ScalarType.Float32)]
    [InlineData(false, 4096, ScalarType.Float32)]
    public void AutoDType_IsBFloat16OnlyWithNativeBFloat16AndALargeEnoughModel(bool native, int hidden, ScalarType expected)
    {
        var config = TinyCheckpoint.Config() with { HiddenSize = hidden };
        Assert.Equal(expected, new ComputeOptions().ResolveDType(CPU, config, native));
        Assert.Equal(ScalarType.Float64, new ComputeOptions { DType = ScalarType.Float64 }.ResolveDType(CPU, config, native));
    }

    [Theory]
    [InlineData(ModelEngine.Auto, true, true, null, ModelEngine.LlamaCpp)]
    [InlineData(ModelEngine.Auto, true, true, ScalarType.Float32, ModelEngine.LlamaCpp)]
    [InlineData(ModelEngine.Auto, true, false, null, ModelEngine.Torch)]
    [InlineData(ModelEngine.Auto, true, true, ScalarType.BFloat16, ModelEngine.Torch)]
    [InlineData(ModelEngine.Auto, false, true, null, ModelEngine.Torch)]
    [InlineData(ModelEngine.Torch, true, true, null, ModelEngine.Torch)]
    [InlineData(ModelEngine.LlamaCpp, true, true, null, ModelEngine.LlamaCpp)]
    public void AutoEngine_IsLlamaCppForForwardOnlyWorkOnAGgufFile(ModelEngine requested, bool gguf, bool forwardOnly, ScalarType? dtype, ModelEngine expected) =>
        Assert.Equal(expected, ModelEngines.Resolve(requested, gguf, forwardOnly, dtype));

    [Fact]
    public void EngineNames_ParseAndPrintAsTheCliSpellsThem()
    {
        Assert.Equal(ModelEngine.LlamaCpp, ModelEngines.Parse("llama.cpp"));
        Assert.Equal(ModelEngine.Torch, ModelEngines.Parse("Torch"));
        Assert.All(ModelEngines.Names, name => Assert.Equal(name, ModelEngines.NameOf(ModelEngines.Parse(name))));
        Assert.Contains("choose one of auto, torch, llama.cpp", Assert.Throws<MirageException>(() => ModelEngines.Parse("onnx")).Message);
        Assert.Null(ComputeOptions.ParseDType("auto"));
    }
}
