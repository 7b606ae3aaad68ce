using System.Buffers.Binary;

namespace Mirage.Core.Models.Gguf;

/// <summary>
/// ggml's block formats back to float32, block by block, with ggml's own arithmetic (float32
/// products in the same order, no fused multiply-adds), so the values equal ggml's
/// <c>dequantize_row_*</c> bit for bit. Layouts follow ggml-common.h: each block starts with its
/// scales, then the packed quants; K-quants pack 256 values in sub-blocks with 6-bit scales.
/// </summary>
public static class GgufDequantizer
{
    private const int K = 256;

    /// <summary>Dequantizes <paramref name="source"/> (whole blocks of <paramref name="type"/>) into <paramref name="destination"/>.</summary>
    /// <exception cref="InvalidCheckpointException">A type Mirage does not read (the message lists those it does).</exception>
    public static void Dequantize(GgufType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        var info = GgufTypeInfo.Of(type);
        if (!info.Dequantizable)
            throw new InvalidCheckpointException($"Tensor type {type} is not supported; supported: {string.Join(", ", GgufTypeInfo.SupportedNames)}.");
        int blocks = source.Length / info.BlockBytes;
        if (blocks * info.BlockBytes != source.Length || destination.Length != blocks * info.BlockSize)
            throw new ArgumentException($"{source.Length} bytes of {type} do not make {destination.Length} values.");
        for (int b = 0; b < blocks; b++)
        {
            var x = source.Slice(b * info.BlockBytes, info.BlockBytes);
            var y = destination.Slice(b * info.BlockSize, info.BlockSize);
            switch (type)
            {
                case GgufType.F32: y[0] = BinaryPrimitives.ReadSingleLittleEndian(x); break;
                case GgufType.F16: y[0] = Half(x); break;
                case GgufType.BF16: y[0] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(x) << 16); break;
                case GgufType.Q4_0: Q4(x, y, offset: false); break;
                case GgufType.Q4_1: Q4(x, y, offset: true); break;
                case GgufType.Q5_0: Q5(x, y, offset: false); break;
                case GgufType.Q5_1: Q5(x, y, offset: true); break;
                case GgufType.Q8_0: Q8(x, y); break;
                case GgufType.Q2_K: Q2K(x, y); break;
                case GgufType.Q3_K: Q3K(x, y); break;
                case GgufType.Q4_K: Q4K(x, y); break;
                case GgufType.Q5_K: Q5K(x, y); break;
                case GgufType.Q6_K: Q6K(x, y); break;
            }
        }
    }

    private static float Half(ReadOnlySpan<byte> bytes) => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(bytes));

    // d, [m], 16 bytes of nibbles: values j and j + 16 share byte j.
    private static void Q4(ReadOnlySpan<byte> x, Span<float> y, bool offset)
    {
        float d = Half(x), m = offset ? Half(x[2..]) : 0;
        var qs = x[(offset ? 4 : 2)..];
        for (int j = 0; j < 16; j++)
        {
            int x0 = qs[j] & 0x0F, x1 = qs[j] >> 4;
            y[j] = offset ? x0 * d + m : (x0 - 8) * d;
            y[j + 16] = offset ? x1 * d + m : (x1 - 8) * d;
        }
    }

    // d, [m], 32 high bits, 16 bytes of nibbles.
    private static void Q5(ReadOnlySpan<byte> x, Span<float> y, bool offset)
    {
        float d = Half(x), m = offset ? Half(x[2..]) : 0;
        int at = offset ? 4 : 2;
        uint qh = BinaryPrimitives.ReadUInt32LittleEndian(x[at..]);
        var qs = x[(at + 4)..];
        for (int j = 0; j < 16; j++)
        {
            int xh0 = (int)((qh >> j) << 4) & 0x10, xh1 = (int)(qh >> (j + 12)) & 0x10;
            int x0 = (qs[j] & 0x0F) | xh0, x1 = (qs[j] >> 4) | xh1;
            y[j] = offset ? x0 * d + m : (x0 - 16) * d;
            y[j + 16] = offset ? x1 * d + m : (x1 - 16) * d;
        }
    }

    private static void Q8(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x);
        for (int j = 0; j < 32; j++)
            y[j] = (sbyte)x[2 + j] * d;
    }

    // scales[16] (4-bit scale | 4-bit min), qs[64] (2 bits each), d, dmin.
    private static void Q2K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var scales = x[..16];
        var q = x[16..80];
        float d = Half(x[80..]), min = Half(x[82..]);
        int o = 0, s = 0;
        for (int n = 0; n < K; n += 128, q = q[32..])
        {
            for (int shift = 0; shift < 8; shift += 2)
            {
                for (int half = 0; half < 32; half += 16)
                {
                    byte sc = scales[s++];
                    float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++)
                        y[o++] = dl * ((q[l + half] >> shift) & 3) - ml;
                }
            }
        }
    }

    // hmask[32], qs[64], scales[12] (sixteen 6-bit scales), d.
    private static void Q3K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var hm = x[..32];
        var q = x[32..96];
        float dAll = Half(x[108..]);
        Span<sbyte> scales = stackalloc sbyte[16];
        var packed = x[96..108];
        for (int j = 0; j < 16; j++)
        {
            int low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
            int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
            scales[j] = (sbyte)((low | (high << 4)) - 32);
        }
        int o = 0, s = 0;
        byte m = 1;
        for (int n = 0; n < K; n += 128, q = q[32..])
        {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1)
            {
                for (int half = 0; half < 32; half += 16)
                {
                    float dl = dAll * scales[s++];
                    for (int l = 0; l < 16; l++)
                        y[o++] = dl * (((q[l + half] >> shift) & 3) - ((hm[l + half] & m) != 0 ? 0 : 4));
                }
            }
        }
    }

    // The 6-bit scale and min of sub-block j from K-quants' 12 packed bytes.
    private static (int Scale, int Min) ScaleMin(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    // d, dmin, scales[12], qs[128].
    private static void Q4K(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x), min = Half(x[2..]);
        var scales = x[4..16];
        var q = x[16..144];
        int o = 0;
        for (int j = 0, s = 0; j < K; j += 64, s += 2, q = q[32..])
        {
            var (sc1, m1) = ScaleMin(s, scales);
            var (sc2, m2) = ScaleMin(s + 1, scales);
            float d1 = d * sc1, min1 = min * m1, d2 = d * sc2, min2 = min * m2;
            for (int l = 0; l < 32; l++)
                y[o++] = d1 * (q[l] & 0xF) - min1;
            for (int l = 0; l < 32; l++)
                y[o++] = d2 * (q[l] >> 4) - min2;
        }
    }

    // d, dmin, scales[12], qh[32], qs[128].
    private static void Q5K(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x), min = Half(x[2..]);
        var scales = x[4..16];
        var qh = x[16..48];
        var ql = x[48..176];
        int o = 0;
        byte u1 = 1, u2 = 2;
        for (int j = 0, s = 0; j < K; j += 64, s += 2, ql = ql[32..], u1 <<= 2, u2 <<= 2)
        {
            var (sc1, m1) = ScaleMin(s, scales);
            var (sc2, m2) = ScaleMin(s + 1, scales);
            float d1 = d * sc1, min1 = min * m1, d2 = d * sc2, min2 = min * m2;
            for (int l = 0; l < 32; l++)
                y[o++] = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - min1;
            for (int l = 0; l < 32; l++)
                y[o++] = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - min2;
        }
    }

    // ql[128], qh[64], scales[16] (int8), d.
    private static void Q6K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var ql = x[..128];
        var qh = x[128..192];
        var sc = x[192..208];
        float d = Half(x[208..]);
        for (int n = 0; n < K; n += 128, ql = ql[64..], qh = qh[32..], sc = sc[8..])
        {
            for (int l = 0; l < 32; l++)
            {
                int s = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[n + l] = d * (sbyte)sc[s] * q1;
                y[n + l + 32] = d * (sbyte)sc[s + 2] * q2;
                y[n + l + 64] = d * (sbyte)sc[s + 4] * q3;
                y[n + l + 96] = d * (sbyte)sc[s + 6] * q4;
            }
        }
    }
}
