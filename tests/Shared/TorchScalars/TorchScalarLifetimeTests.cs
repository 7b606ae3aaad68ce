using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Tests.TorchScalars;

/// <summary>
/// Mirage never hands libtorch a Scalar that the garbage collector may free mid-call. TorchSharp
/// turns numbers into Scalars only a finalizer frees, and many of its methods (a + b, x * 2.0,
/// arange(n)) make one, pass its handle and drop it; a collection during the native call then fails
/// the call or crashes the process (seen in CI). The product code goes through held Scalars
/// (Mirage.Core.Models.TorchScalars) instead; this reads the compiled code of every Mirage assembly
/// beside the test (the product's and the tests' own) and names each call that does not.
/// </summary>
public sealed class TorchScalarLifetimeTests
{
    private static readonly Lazy<HashSet<string>> DroppingMethods = new(FindDroppingMethods);

    [Fact]
    public void MirageCode_PassesLibtorchOnlyScalarsItHolds()
    {
        var assemblies = Directory.GetFiles(AppContext.BaseDirectory, "*.dll")
            .Where(p => Path.GetFileName(p).StartsWith("Mirage", StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.Contains(assemblies, p => Path.GetFileName(p) == "Mirage.Core.dll");

        var offending = assemblies
            .SelectMany(p => IlCallSites.Read(p).Select(c => (Assembly: Path.GetFileName(p), c.Caller, c.Callee)))
            .Where(c => DropsAScalar(c.Callee) && !c.Caller.Contains(nameof(DropsScalars_ForTheScanToFind), StringComparison.Ordinal))
            .Select(c => $"{c.Assembly}: {c.Caller} calls {c.Callee}")
            .Distinct().ToList();

        Assert.True(offending.Count == 0, "Calls that let TorchSharp drop a Scalar mid-call (use TorchScalars or a Scalar in a using):\n" + string.Join("\n", offending));
    }

    [Fact]
    public void TheScan_FindsTheCallsThatDropScalars_AndPassesTheHeldForms()
    {
        var calls = IlCallSites.Read(typeof(TorchScalarLifetimeTests).Assembly.Location);
        var flagged = calls.Where(c => c.Caller.Contains(nameof(DropsScalars_ForTheScanToFind), StringComparison.Ordinal) && DropsAScalar(c.Callee))
            .Select(c => c.Callee).ToList();

        Assert.Contains("TorchSharp.torch+Tensor::op_Addition(TorchSharp.torch+Tensor,TorchSharp.torch+Tensor)", flagged);
        Assert.Contains("TorchSharp.torch+Tensor::op_Multiply(TorchSharp.torch+Tensor,Double)", flagged);
        Assert.Contains(flagged, c => c.StartsWith("TorchSharp.torch::arange(TorchSharp.Scalar,", StringComparison.Ordinal));
        Assert.Contains(flagged, c => c.StartsWith("TorchSharp.Scalar::op_Implicit(Int32)", StringComparison.Ordinal));
        Assert.DoesNotContain(DroppingMethods.Value, m => m.StartsWith("TorchSharp.torch+Tensor::add(TorchSharp.torch+Tensor,TorchSharp.Scalar)", StringComparison.Ordinal));
        Assert.DoesNotContain(DroppingMethods.Value, m => m.StartsWith("TorchSharp.torch+Tensor::mul(TorchSharp.Scalar)", StringComparison.Ordinal));
    }

    // Never run: the patterns the scan must catch.
    private static Tensor DropsScalars_ForTheScanToFind(Tensor a, Tensor b) => (a + b) * 2.0 + arange(3).masked_fill(a > b, 0);

    private static bool DropsAScalar(string callee) =>
        callee.StartsWith("TorchSharp.Scalar::op_Implicit", StringComparison.Ordinal) || DroppingMethods.Value.Contains(callee);

    // TorchSharp's methods that convert a number to a Scalar they do not keep (or call one that does).
    private static HashSet<string> FindDroppingMethods()
    {
        var calls = IlCallSites.Read(typeof(Scalar).Assembly.Location);
        var dropping = calls
            .Where(c => (c.Callee.StartsWith("TorchSharp.Scalar::op_Implicit", StringComparison.Ordinal) || c.Callee.StartsWith("TorchSharp.ScalarExtensionMethods::ToScalar", StringComparison.Ordinal))
                && !c.Caller.StartsWith("TorchSharp.Scalar::op_Implicit", StringComparison.Ordinal))
            .Select(c => c.Caller).ToHashSet(StringComparer.Ordinal);
        for (bool grew = true; grew;)
        {
            grew = false;
            foreach (var (caller, callee) in calls)
                grew |= dropping.Contains(callee) && dropping.Add(caller);
        }
        return dropping;
    }
}
