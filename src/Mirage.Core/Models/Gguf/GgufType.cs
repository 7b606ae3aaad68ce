namespace Mirage.Core.Models.Gguf;

/// <summary>ggml's tensor types, with the ids GGUF stores.</summary>
public enum GgufType
{
#pragma warning disable CS1591 // the names are ggml's
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
#pragma warning restore CS1591
}

/// <summary>How a type lays out its values: blocks of <see cref="BlockSize"/> values in <see cref="BlockBytes"/> bytes.</summary>
/// <param name="Type">The type.</param>
/// <param name="BlockSize">Values per block (1 for plain floats).</param>
/// <param name="BlockBytes">Bytes per block.</param>
/// <param name="Dequantizable">Whether Mirage reads it (everything Q4_K_M, Q5_K_M, Q6_K and Q8_0 files contain, and the plain floats).</param>
public readonly record struct GgufTypeInfo(GgufType Type, int BlockSize, int BlockBytes, bool Dequantizable)
{
    private static readonly Dictionary<GgufType, GgufTypeInfo> Table = new GgufTypeInfo[]
    {
        new(GgufType.F32, 1, 4, true), new(GgufType.F16, 1, 2, true), new(GgufType.BF16, 1, 2, true),
        new(GgufType.Q4_0, 32, 18, true), new(GgufType.Q4_1, 32, 20, true), new(GgufType.Q5_0, 32, 22, true), new(GgufType.Q5_1, 32, 24, true),
        new(GgufType.Q8_0, 32, 34, true), new(GgufType.Q8_1, 32, 36, false),
        new(GgufType.Q2_K, 256, 84, true), new(GgufType.Q3_K, 256, 110, true), new(GgufType.Q4_K, 256, 144, true),
        new(GgufType.Q5_K, 256, 176, true), new(GgufType.Q6_K, 256, 210, true), new(GgufType.Q8_K, 256, 292, false),
        new(GgufType.IQ2_XXS, 256, 66, false), new(GgufType.IQ2_XS, 256, 74, false), new(GgufType.IQ3_XXS, 256, 98, false),
        new(GgufType.IQ1_S, 256, 50, false), new(GgufType.IQ4_NL, 32, 18, false), new(GgufType.IQ3_S, 256, 110, false),
        new(GgufType.IQ2_S, 256, 82, false), new(GgufType.IQ4_XS, 256, 136, false), new(GgufType.I8, 1, 1, false),
        new(GgufType.I16, 1, 2, false), new(GgufType.I32, 1, 4, false), new(GgufType.I64, 1, 8, false), new(GgufType.F64, 1, 8, false),
        new(GgufType.IQ1_M, 256, 56, false), new(GgufType.TQ1_0, 256, 54, false), new(GgufType.TQ2_0, 256, 66, false), new(GgufType.MXFP4, 32, 17, false),
    }.ToDictionary(t => t.Type);

    /// <summary>The layout of type id <paramref name="id"/>, or null for an id ggml does not define.</summary>
    public static GgufTypeInfo? Of(uint id) => Table.TryGetValue((GgufType)id, out var info) && Enum.IsDefined((GgufType)id) ? info : null;

    /// <summary>The layout of <paramref name="type"/>.</summary>
    public static GgufTypeInfo Of(GgufType type) => Table[type];

    /// <summary>The types Mirage dequantizes, by name.</summary>
    public static IReadOnlyList<string> SupportedNames { get; } = Table.Values.Where(t => t.Dequantizable).Select(t => t.Type.ToString()).ToList();
}
