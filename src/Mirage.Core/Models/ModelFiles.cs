using System.Runtime.InteropServices;
using System.Text;

namespace Mirage.Core.Models;

/// <summary>
/// Reads and writes the small files of a model (configs, tokenizers, indexes, manifests, refs) as
/// untrusted input: only regular files are read (a link to <c>/dev/zero</c> or a FIFO would run
/// out of memory or hang), sizes are checked before a byte is read, and a write replaces the
/// directory entry instead of following a link planted there.
/// </summary>
public static partial class ModelFiles
{
    /// <summary>The most a JSON or text file of a model may hold (256 MiB; the largest tokenizer.json files are ~35 MB).</summary>
    public const long MaxTextBytes = 256L << 20;

    /// <summary>Whether <paramref name="path"/> is a regular file (the file a chain of links ends at, with <paramref name="followLinks"/>).</summary>
    public static bool IsRegularFile(string path, bool followLinks = true) => Status(path, followLinks) is { Regular: true };

    // Type and size of what a path names, or null when nothing is there.
    private static (bool Regular, long Size)? Status(string path, bool followLinks)
    {
        if (!OperatingSystem.IsLinux())
        {
            FileSystemInfo info = new FileInfo(path);
            if (followLinks && info.LinkTarget is not null)
                info = info.ResolveLinkTarget(returnFinalTarget: true) ?? info;
            return info is FileInfo { Exists: true } file ? (followLinks || file.LinkTarget is null, file.Length) : null;
        }
        // struct statx has one layout on every architecture: stx_mode (u16) at byte 28, stx_size (u64) at 40.
        var status = new byte[256];
        const int SymlinkNoFollow = 0x100, AtCurrentDirectory = -100;
        const uint TypeModeAndSize = 0x1 | 0x2 | 0x200;
        if (StatX(AtCurrentDirectory, path, followLinks ? 0 : SymlinkNoFollow, TypeModeAndSize, status) != 0)
            return null;
        return ((BitConverter.ToUInt16(status, 28) & 0xF000) == 0x8000, (long)BitConverter.ToUInt64(status, 40)); // S_IFREG
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatX(int directory, string path, int flags, uint mask, [Out] byte[] status);

    /// <summary>
    /// Throws unless <paramref name="path"/> is a regular file of at most <paramref name="maxBytes"/>;
    /// returns its size. <paramref name="what"/> names it in the message.
    /// </summary>
    /// <exception cref="InvalidCheckpointException">Missing, not a regular file, or too large.</exception>
    public static long CheckRegular(string path, long maxBytes = long.MaxValue, string what = "")
    {
        var status = Status(path, followLinks: true);
        if (status is null)
            throw new InvalidCheckpointException($"'{path}' does not exist{(new FileInfo(path).LinkTarget is { } dangling ? $" (it links to {dangling}, which is missing)" : "")}.");
        if (!status.Value.Regular)
            throw new InvalidCheckpointException($"'{path}' is not a regular file (a folder, device, pipe or socket{(new FileInfo(path).LinkTarget is { } target ? $", through a link to {target}" : "")}); {(what.Length > 0 ? what : "a model's files")} must be plain files.");
        long length = status.Value.Size;
        if (length > maxBytes)
            throw new InvalidCheckpointException($"'{path}' is {length:N0} bytes, more than the {maxBytes:N0} {(what.Length > 0 ? what : "such a file")} may hold.");
        return length;
    }

    /// <summary>The text of a regular file of at most <paramref name="maxBytes"/> (UTF-8).</summary>
    /// <exception cref="InvalidCheckpointException">Missing, not a regular file, or too large.</exception>
    public static string ReadText(string path, long maxBytes = MaxTextBytes) => Encoding.UTF8.GetString(ReadBytes(path, maxBytes));

    /// <summary>The bytes of a regular file of at most <paramref name="maxBytes"/>.</summary>
    /// <exception cref="InvalidCheckpointException">Missing, not a regular file, or too large.</exception>
    public static byte[] ReadBytes(string path, long maxBytes = MaxTextBytes)
    {
        CheckRegular(path, maxBytes);
        // Read up to the limit only: the file may have grown since it was checked.
        using var stream = File.OpenRead(path);
        var bytes = new byte[Math.Min(stream.Length, maxBytes)];
        stream.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
        return bytes;
    }

    /// <summary>
    /// The user's home folder (<c>HOME</c>), for the caches under it; refused when unset rather than
    /// letting a cache land in the working folder. <paramref name="instead"/> names the variable that
    /// sets the cache directly.
    /// </summary>
    public static string HomeFolder(string instead) =>
        Environment.GetFolderPath(Environment.SpecialFolder.UserProfile, Environment.SpecialFolderOption.DoNotVerify) is { Length: > 0 } home && Path.IsPathRooted(home)
            ? home
            : throw new MirageException($"HOME is not set to a folder, so the default cache location is unknown; set HOME or {instead}.");

    /// <summary>
    /// Writes <paramref name="text"/> to <paramref name="path"/> through a new file renamed over it,
    /// so a link at <paramref name="path"/> is replaced, never written through.
    /// </summary>
    public static void Replace(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var partial = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        using (var stream = new FileStream(partial, FileMode.CreateNew, FileAccess.Write))
            stream.Write(Encoding.UTF8.GetBytes(text));
        File.Move(partial, path, overwrite: true);
    }
}
