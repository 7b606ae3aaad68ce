using Mirage.Core.Models;
using Mirage.Core.Models.Llama;
using Mirage.Tests;
using static TorchSharp.torch;

namespace Mirage.Core.Tests.Models;

/// <summary>Sliding-window attention and RoPE scaling against their direct formulas.</summary>
public sealed class SlidingWindowAndRopeTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static ModelConfig Mistral(int window) => ModelConfig.Parse($$"""
        {
          "architectures": ["MistralForCausalLM"], "hidden_size": 32, "intermediate_size": 48,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
          "vocab_size": 264, "max_position_embeddings": 128, "sliding_window": {{window}},
          "bos_token_id": 259, "eos_token_id": 260
        }
        """);

    [Theory]
    [InlineData(0, null)]
    [InlineData(0, 3)]
    [InlineData(5, 3)]
    [InlineData(5, null)]
    public void AttentionMask_MatchesTheDirectRule(int cached, int? window)
    {
        using var scope = NewDisposeScope();
        var x = zeros(2, 4, 8, ScalarType.Float64);
        var keyMask = ones(2, cached + 4, ScalarType.Bool);
        keyMask[1, 0] = tensor(false);
        var mask = AttentionMask.Build(x, cached, keyMask, window);
        Assert.Equal([2L, 1, 4, cached + 4], mask.shape);
        for (int b = 0; b < 2; b++)
        for (int t = 0; t < 4; t++)
        for (int s = 0; s < cached + 4; s++)
        {
            int query = cached + t;
            bool allowed = s <= query && (window is null || query - s < window) && !(b == 1 && s == 0);
            Assert.Equal(allowed, mask[b, 0, t, s].item<double>() == 0);
        }
    }

    [Fact]
    public void SlidingWindow_LimitsHowFarBackAnEarlyTokenIsSeen()
    {
        // With window W and L layers, position t sees tokens no further back than L * (W - 1).
        const int window = 3, layers = 2;
        var config = Mistral(window);
        Assert.All(config.SlidingWindows, w => Assert.Equal(window, w));
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, config));
        var ids = TinyCheckpoint.RandomIds(10, 20);
        var changed = (int[])ids.Clone();
        changed[0] = (ids[0] + 1) % 259;
        var a = TinyCheckpoint.Logits(model, ids);
        var b = TinyCheckpoint.Logits(model, changed);
        for (int t = 0; t < ids.Length; t++)
        {
            double difference = Enumerable.Range(0, a.GetLength(1)).Max(v => Math.Abs(a[t, v] - b[t, v]));
            if (t > layers * (window - 1))
                Assert.Equal(0.0, difference);
            else
                Assert.True(difference > 1e-6, $"position {t} should still see token 0");
        }
    }

    [Fact]
    public void SlidingWindow_KvCacheStepsEqualFullRecomputation()
    {
        using var model = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, Mistral(4)));
        var prompt = TinyCheckpoint.RandomIds(3, 21);
        var generated = model.Generate(prompt, new GenerationOptions { MaxTokens = 9, StopAtEos = false }).TokenIds;
        var all = prompt.Concat(generated).ToArray();
        var logits = TinyCheckpoint.Logits(model, all);
        for (int i = 0; i < generated.Count; i++)
        {
            int row = prompt.Length - 1 + i;
            var best = Enumerable.Range(0, logits.GetLength(1)).MaxBy(v => logits[row, v]);
            Assert.Equal(best, generated[i]);
        }
    }

    [Fact]
    public void Qwen2_SlidesOnlyFromMaxWindowLayers_WhenEnabled()
    {
        var config = ModelConfig.Parse("""
            {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 4,
             "num_attention_heads": 2, "vocab_size": 10, "use_sliding_window": true, "sliding_window": 16, "max_window_layers": 2}
            """);
        Assert.Equal([null, null, 16, 16], config.SlidingWindows);
        var disabled = ModelConfig.Parse("""
            {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 2,
             "num_attention_heads": 2, "vocab_size": 10, "use_sliding_window": false, "sliding_window": 16}
            """);
        Assert.All(disabled.SlidingWindows, w => Assert.Null(w));
        Assert.True(disabled.QkvBias);
        Assert.False(disabled.OutputBias);
    }

    [Fact]
    public void Llama3RopeScaling_MatchesTheWavelengthRule()
    {
        // Llama 3.1: theta 500000, head dim 128, factor 8, low 1, high 4, original context 8192.
        var scaling = new RopeScaling("llama3", 8, 1, 4, 8192);
        var plain = RopeScaling.InverseFrequencies(128, 500000, null);
        var scaled = RopeScaling.InverseFrequencies(128, 500000, scaling);
        int high = 0, low = 0, medium = 0;
        for (int i = 0; i < plain.Length; i++)
        {
            double wavelength = 2 * Math.PI / plain[i];
            double expected;
            if (wavelength < 8192 / 4.0) { expected = plain[i]; high++; }
            else if (wavelength > 8192 / 1.0) { expected = plain[i] / 8; low++; }
            else
            {
                double smooth = (8192 / wavelength - 1) / (4 - 1);
                expected = (1 - smooth) * plain[i] / 8 + smooth * plain[i];
                medium++;
            }
            Assert.Equal(expected, scaled[i], 1e-15);
        }
        Assert.True(high > 0 && low > 0 && medium > 0, "every band should be exercised");
    }

    [Fact]
    public void LinearRopeScaling_AtPositionP_EqualsUnscaledAtPOverFactor()
    {
        var baseConfig = TinyCheckpoint.Config();
        using var plain = new RotaryEmbedding(baseConfig, CPU);
        using var scaled = new RotaryEmbedding(baseConfig with { RopeScaling = new RopeScaling("linear", 2) }, CPU);
        using var scope = NewDisposeScope();
        var (cosScaled, sinScaled) = scaled.Tables(tensor(new long[] { 0, 2, 4, 6, 40 }).unsqueeze(0), ScalarType.Float64);
        var (cosPlain, sinPlain) = plain.Tables(tensor(new long[] { 0, 1, 2, 3, 20 }).unsqueeze(0), ScalarType.Float64);
        Assert.True(cosScaled.allclose(cosPlain, 0, 1e-12));
        Assert.True(sinScaled.allclose(sinPlain, 0, 1e-12));
    }

    [Fact]
    public void RopeScalingConfig_RoundTripsThroughConfigJson_AndMovesOnlyLaterPositions()
    {
        var plainConfig = TinyCheckpoint.Config();
        var scaledConfig = plainConfig with { RopeScaling = new RopeScaling("llama3", 4, 1, 4, 16) };
        Assert.Equal(scaledConfig.RopeScaling, ModelConfig.Parse(scaledConfig.ToJson()).RopeScaling);
        using var scaled = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, scaledConfig, name: "scaled"));
        using var plain = TinyCheckpoint.Load(TinyCheckpoint.Write(_temp, plainConfig, name: "plain"));
        Assert.Equal("llama3", scaled.Config.RopeScaling!.Type);
        var ids = TinyCheckpoint.RandomIds(6, 22);
        var a = TinyCheckpoint.Logits(scaled, ids);
        var b = TinyCheckpoint.Logits(plain, ids);
        // Rotation at position 0 is the identity, so only later positions can differ.
        Assert.Equal(0.0, Enumerable.Range(0, a.GetLength(1)).Max(v => Math.Abs(a[0, v] - b[0, v])));
        Assert.True(Enumerable.Range(0, a.GetLength(1)).Max(v => Math.Abs(a[5, v] - b[5, v])) > 1e-6);
    }
}
