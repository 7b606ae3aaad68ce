using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// Tensor arithmetic with numbers, and ranges, whose native Scalars live through the whole call.
/// </summary>
/// <remarks>
/// TorchSharp (0.107) turns a number into a native Scalar that only its finalizer frees, and many of
/// its overloads (<c>a + b</c>, <c>x * 2.0</c>, <c>arange(n)</c>, <c>square()</c>, <c>masked_fill(m, 0)</c>)
/// make such a Scalar, pass its handle to libtorch and drop the object: a garbage collection on
/// another thread during the call frees the Scalar under libtorch, which then fails ("Expected false
/// to be true" in <c>toDouble</c>) or crashes the process. Rare, and likelier the busier the process.
/// Mirage's code passes Scalars it holds instead: the two static ones here, or one it disposes after
/// the call. <c>TorchScalarLifetimeTests</c> reads the compiled code and fails on any call that does not.
/// </remarks>
internal static class TorchScalars
{
    /// <summary>Never collected (a static root), so safe to pass to any number of calls on any thread.</summary>
    public static readonly Scalar Zero = 0.ToScalar(), One = 1.ToScalar(), MinusOne = (-1).ToScalar();

    /// <summary><c>a + b</c> (TorchSharp's operator adds with a temporary alpha of 1).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary><c>a + b</c> in place.</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary><c>a + b</c> for a held Scalar.</summary>
    public static Tensor Plus(this Tensor a, Scalar b) => a.add(b, One);

    /// <summary><c>a + b</c> for a number.</summary>
    public static Tensor Plus(this Tensor a, double b)
    {
        using var scalar = b.ToScalar();
        return a.add(scalar, One);
    }

    /// <summary><c>a * b</c> for a number.</summary>
    public static Tensor Times(this Tensor a, double b)
    {
        using var scalar = b.ToScalar();
        return a.mul(scalar);
    }

    /// <summary><c>a / b</c> for a number (a true division, not a multiplication by 1/b).</summary>
    public static Tensor DividedBy(this Tensor a, double b)
    {
        using var scalar = b.ToScalar();
        return a.div(scalar);
    }

    /// <summary><c>x * x</c> (TorchSharp's <c>square()</c> is <c>pow(2)</c> with a temporary 2).</summary>
    public static Tensor Squared(this Tensor x) => x.mul(x);

    /// <summary>The int64 range <c>[start, stop)</c> (an int64 position or index tensor).</summary>
    public static Tensor Range(long start, long stop, Device? device = null)
    {
        using var from = start.ToScalar();
        using var to = stop.ToScalar();
        return arange(from, to, One, ScalarType.Int64, device);
    }

    /// <summary>The int64 range <c>[0, stop)</c>.</summary>
    public static Tensor Range(long stop, Device? device = null) => Range(0, stop, device);
}
