namespace Mirage.Core.Models.Sources;

/// <summary>
/// The Hugging Face hub cache, laid out as <c>huggingface_hub</c> lays it out:
/// <c>models--ORG--NAME/refs/REVISION</c> holds a commit, <c>snapshots/COMMIT/</c> the files (links
/// into <c>blobs/</c>). Its root is <c>$HF_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>, else
/// <c>~/.cache/huggingface/hub</c>.
/// </summary>
public sealed class HuggingFaceCache(string root)
{
    /// <summary>The cache root.</summary>
    public string Root { get; } = root;

    /// <summary>The cache the environment names.</summary>
    public static HuggingFaceCache FromEnvironment() => new(
        Environment.GetEnvironmentVariable("HF_HUB_CACHE") is { Length: > 0 } hub ? hub
        : Environment.GetEnvironmentVariable("HF_HOME") is { Length: > 0 } home ? Path.Combine(home, "hub")
        : Path.Combine(ModelFiles.HomeFolder(instead: "HF_HUB_CACHE"), ".cache", "huggingface", "hub"));

    /// <summary>The folder of a repository's cache entry.</summary>
    public string RepositoryFolder(string repository) => Path.Combine(Root, "models--" + repository.Replace("/", "--", StringComparison.Ordinal));

    /// <summary>The snapshot folder of <paramref name="repository"/> at <paramref name="revision"/> (a branch, a tag or a commit).</summary>
    /// <exception cref="MirageException">Not in the cache: the message says which folders were searched and suggests <c>mirage pull</c>.</exception>
    public string Snapshot(string repository, string revision)
    {
        var folder = RepositoryFolder(repository);
        var commit = Commit(folder, revision);
        var snapshot = commit is null ? null : Path.Combine(folder, "snapshots", commit);
        if (snapshot is not null && Directory.Exists(snapshot))
            return snapshot;
        throw new MirageException(
            $"'{repository}' at '{revision}' is not in the Hugging Face cache (searched {Path.Combine(folder, "refs", revision)} and {Path.Combine(folder, "snapshots")}); "
            + $"download it with: mirage pull {repository}{(revision == "main" ? "" : $" --revision {revision}")}");
    }

    /// <summary>The commit a revision names: what <c>refs/REVISION</c> holds, or the revision itself when it is a commit.</summary>
    public static string? Commit(string repositoryFolder, string revision)
    {
        var reference = Path.Combine(repositoryFolder, "refs", revision);
        if (File.Exists(reference))
        {
            var commit = ModelFiles.ReadText(reference, maxBytes: 4096).Trim();
            return IsCommit(commit) ? commit : null;
        }
        return IsCommit(revision) ? revision : null;
    }

    /// <summary>Whether a string is a full git commit id (40 hex digits).</summary>
    public static bool IsCommit(string text) => text.Length == 40 && text.All(char.IsAsciiHexDigit);
}
