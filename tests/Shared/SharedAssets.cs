namespace Mirage.Tests;

/// <summary>
/// Finds the workplace's <c>shared/</c> folder (the real stories260K checkpoint and its reference
/// outputs): <c>MIRAGE_SHARED_DIR</c> if set, else <c>../shared</c> beside the repository root.
/// Tests that need it are skipped with a visible reason where it is absent (a user's clone),
/// unless <c>MIRAGE_REQUIRE_SHARED=1</c> (CI), which turns that skip into a failure.
/// </summary>
public static class SharedAssets
{
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string? Root { get; } = Locate();

    public static string Stories260KHf => Path.Combine(Require(), "models", "stories260K-hf");

    /// <summary>The reader model the repository ships in <c>models/reader</c> (the default model).</summary>
    public static string EmbeddedReader => Path.Combine(RepositoryRoot, "models", "reader");

    /// <summary>A copy of stories260K in <paramref name="temp"/> whose tokenizer_config.json carries <paramref name="chatTemplate"/>.</summary>
    public static string Stories260KWithChatTemplate(TempDirectory temp, string chatTemplate)
    {
        var directory = Directory.CreateDirectory(Path.Combine(temp.Path, "stories260K-templated")).FullName;
        foreach (var file in Directory.GetFiles(Stories260KHf))
            File.Copy(file, Path.Combine(directory, Path.GetFileName(file)));
        var path = Path.Combine(directory, "tokenizer_config.json");
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        config["chat_template"] = chatTemplate;
        File.WriteAllText(path, config.ToJsonString());
        return directory;
    }

    /// <summary>The shared folder, or a skip (a failure under MIRAGE_REQUIRE_SHARED=1) when it is missing.</summary>
    public static string Require()
    {
        if (Root is not null)
            return Root;
        const string reason = "../shared (stories260K and reference outputs) is not beside the repository; set MIRAGE_SHARED_DIR to run these tests.";
        if (Environment.GetEnvironmentVariable("MIRAGE_REQUIRE_SHARED") == "1")
            Assert.Fail(reason + " MIRAGE_REQUIRE_SHARED=1 makes this a failure.");
        Assert.Skip(reason);
        return null!;
    }

    private static string? Locate()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("MIRAGE_SHARED_DIR");
        if (!string.IsNullOrEmpty(fromEnvironment))
            return Directory.Exists(fromEnvironment) ? fromEnvironment : null;
        var candidate = Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared"));
        return Directory.Exists(Path.Combine(candidate, "models")) ? candidate : null;
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Mirage.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"Mirage.sln not found above {AppContext.BaseDirectory}.");
    }
}
