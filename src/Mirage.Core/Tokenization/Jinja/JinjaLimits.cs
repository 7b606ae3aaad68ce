using System.Diagnostics;

namespace Mirage.Core.Tokenization.Jinja;

/// <summary>
/// A chat template comes from a model file, so from a stranger: these bound the work and memory
/// one can cost. Real templates stay far below them (the longest published ones are ~20 KB, nest
/// ~6 statements deep and loop once over the messages and tools).
/// </summary>
internal static class JinjaLimits
{
    /// <summary>Characters of template source.</summary>
    public const int MaxSourceChars = 1 << 20;

    /// <summary>Statements (<c>if</c>, <c>for</c>) nested inside one another.</summary>
    public const int MaxStatementNesting = 64;

    /// <summary>Brackets, <c>not</c>s, signs and inline <c>if</c>s nested inside one expression.</summary>
    public const int MaxExpressionNesting = 64;

    /// <summary>Tokens in one expression: bounds the chain of operators evaluated inside one another.</summary>
    public const int MaxExpressionTokens = 4096;

    /// <summary>Loop iterations in one render, all loops together.</summary>
    public const int MaxIterations = 100_000;

    /// <summary>Characters of the output and of any string a template builds; items of any list.</summary>
    public const int MaxValueLength = 1 << 22;

    /// <summary>Wall-clock time of one render.</summary>
    public static readonly TimeSpan MaxRenderTime = TimeSpan.FromSeconds(2);

    public static ChatTemplateLimitException Exceeded(string what) => new($"Chat template: {what}; the template is refused.");

    /// <summary>Throws when a value of <paramref name="length"/> characters or items would pass <see cref="MaxValueLength"/>; checked before it is built.</summary>
    public static void CheckLength(long length, string what)
    {
        if (length > MaxValueLength)
            throw Exceeded($"{what} would hold {length:N0} characters or items, over the limit of {MaxValueLength:N0}");
    }
}

/// <summary>What one render may still spend: loop iterations and time; cancelled with the request it serves.</summary>
internal sealed class JinjaBudget(CancellationToken cancellationToken)
{
    private readonly long _deadline = Stopwatch.GetTimestamp() + (long)(JinjaLimits.MaxRenderTime.TotalSeconds * Stopwatch.Frequency);
    private long _iterations;

    /// <summary>Called per statement executed.</summary>
    public void Tick()
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (Stopwatch.GetTimestamp() > _deadline)
            throw JinjaLimits.Exceeded($"rendering took longer than {JinjaLimits.MaxRenderTime.TotalSeconds:0.#} s");
    }

    /// <summary>Called per loop iteration.</summary>
    public void Iterate()
    {
        if (++_iterations > JinjaLimits.MaxIterations)
            throw JinjaLimits.Exceeded($"loops ran more than {JinjaLimits.MaxIterations:N0} iterations in one render");
    }

    /// <summary>Refuses a <c>range</c> longer than the iterations left, before it is built.</summary>
    public void CheckRange(long count)
    {
        if (count > JinjaLimits.MaxIterations - _iterations)
            throw JinjaLimits.Exceeded($"range({count:N0}) is longer than the {JinjaLimits.MaxIterations:N0} loop iterations one render may run");
    }
}
