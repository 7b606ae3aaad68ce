using System.Text.RegularExpressions;

namespace Mirage.Benchmarks;

/// <summary>
/// This process's peak resident memory (Linux <c>VmHWM</c>), and a reset of it (writing 5 to
/// <c>/proc/self/clear_refs</c>), so one phase's peak can be read on its own. The reset first hands
/// freed heap pages back to the system (glibc's <c>malloc_trim</c>, where libtorch's CPU tensors
/// live), so a phase is not charged, or credited, with what earlier phases left resident.
/// </summary>
internal static partial class PeakMemory
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    [GeneratedRegex(@"VmHWM:\s+(\d+) kB")]
    private static partial Regex Peak();

    [GeneratedRegex(@"VmRSS:\s+(\d+) kB")]
    private static partial Regex Resident();

    /// <summary>The peak resident bytes since the process started or the last <see cref="Reset"/>.</summary>
    public static long PeakBytes() => Read(Peak());

    /// <summary>Starts a new peak at the current resident size, which it returns in bytes.</summary>
    public static long Reset()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        _ = MallocTrim(0); // 1 when memory was released: either way the reading that follows is what counts
        File.WriteAllText("/proc/self/clear_refs", "5");
        return Read(Resident());
    }

    private static long Read(Regex field) => long.Parse(field.Match(File.ReadAllText("/proc/self/status")).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) * 1024;
}
