using Mirage.Core.Models.Gguf;

namespace Mirage.Core.Tests.Models.Gguf;

/// <summary>Mirage's dequantization against ggml's own, bit for bit, on blocks ggml quantized.</summary>
public sealed class GgufDequantizerTests
{
    public static TheoryData<GgufType> Quantized => new(GgufType.Q4_0, GgufType.Q4_1, GgufType.Q5_0, GgufType.Q5_1, GgufType.Q8_0,
        GgufType.Q2_K, GgufType.Q3_K, GgufType.Q4_K, GgufType.Q5_K, GgufType.Q6_K);

    private static float[] RandomValues(int count, int seed)
    {
        var random = new Random(seed);
        // Mixed scales, signs and a few outliers, as weights have.
        return Enumerable.Range(0, count).Select(i => (float)((random.NextDouble() - 0.5) * (i % 97 == 0 ? 8 : 0.2) + (i / 256 % 3 - 1) * 0.01)).ToArray();
    }

    [Theory]
    [MemberData(nameof(Quantized))]
    public void Dequantize_EqualsGgml_BitForBit(GgufType type)
    {
        foreach (var seed in new[] { 1, 2, 3 })
        {
            var blocks = Ggml.Quantize(type, RandomValues(4096, seed));
            var expected = Ggml.Dequantize(type, blocks);
            var actual = new float[expected.Length];
            GgufDequantizer.Dequantize(type, blocks, actual);
            int differing = Enumerable.Range(0, expected.Length).Count(i => BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]));
            Assert.True(differing == 0, $"{type}, seed {seed}: {differing} of {expected.Length} values differ (first: {string.Join(", ", Enumerable.Range(0, expected.Length).Where(i => BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i])).Take(3).Select(i => $"[{i}] ggml {expected[i]:R} mirage {actual[i]:R}"))})");
            // And the values are close to what was quantized: these are real quantizations, not zeros.
            Assert.Contains(actual, v => v != 0);
        }
    }

    [Fact]
    public void Float16_EqualsGgml_AndBFloat16IsTheHighHalf()
    {
        var halves = RandomValues(1024, 7).SelectMany(v => BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)v))).ToArray();
        var actual = new float[1024];
        GgufDequantizer.Dequantize(GgufType.F16, halves, actual);
        Assert.Equal(Ggml.Dequantize(GgufType.F16, halves), actual);

        var values = RandomValues(64, 8);
        var bf16 = values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(v) >> 16))).ToArray();
        GgufDequantizer.Dequantize(GgufType.BF16, bf16, actual.AsSpan(0, 64));
        Assert.All(Enumerable.Range(0, 64), i => Assert.Equal(BitConverter.SingleToUInt32Bits(values[i]) & 0xFFFF0000, BitConverter.SingleToUInt32Bits(actual[i])));
    }

    [Theory]
    [InlineData(GgufType.IQ2_XXS)]
    [InlineData(GgufType.TQ1_0)]
    [InlineData(GgufType.Q8_K)]
    public void UnsupportedTypes_AreRefusedByName(GgufType type)
    {
        var info = GgufTypeInfo.Of(type);
        var error = Assert.Throws<InvalidCheckpointException>(() => GgufDequantizer.Dequantize(type, new byte[info.BlockBytes], new float[info.BlockSize]));
        Assert.Contains($"Tensor type {type} is not supported", error.Message);
        Assert.Contains("Q4_K", error.Message);
    }
}
