using Mirage.Core.Models.Gguf;
using Mirage.Tests;

namespace Mirage.Host.Tests.Cli;

/// <summary><c>--model hf:ORG/NAME</c> and <c>--model ollama:NAME</c> as a user types them, against a hub cache and an Ollama store laid out on disk.</summary>
[Collection(nameof(ModelReferenceCommandTests))]
[CollectionDefinition(nameof(ModelReferenceCommandTests), DisableParallelization = true)]
public sealed class ModelReferenceCommandTests
{
    private static readonly string[] Ask =
    [
        "ask", "--question", "Which organisation does Lousdrur Rourti work for, and where was Lousdrur Rourti born?",
        "--passages", Path.Combine(SharedAssets.RepositoryRoot, "samples", "reader-passages.json"),
    ];

    [Fact]
    public async Task AskWithHubAndOllamaReferences_AnswersAsTheFolderDoes()
    {
        using var temp = new TempDirectory();
        // The hub cache: snapshots/<commit>/ files as relative links into blobs/.
        const string commit = "0123456789abcdef0123456789abcdef01234567";
        var repository = Path.Combine(temp.Path, "hub", "models--mirage--reader");
        var snapshot = Directory.CreateDirectory(Path.Combine(repository, "snapshots", commit)).FullName;
        Directory.CreateDirectory(Path.Combine(repository, "blobs"));
        foreach (var file in Directory.GetFiles(SharedAssets.EmbeddedReader))
        {
            var blob = Path.Combine(repository, "blobs", Path.GetFileName(file) + ".blob");
            File.Copy(file, blob);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
        }
        Directory.CreateDirectory(Path.Combine(repository, "refs"));
        File.WriteAllText(Path.Combine(repository, "refs", "main"), commit);
        // The Ollama store: a manifest naming the GGUF blob.
        var store = Path.Combine(temp.Path, "ollama");
        Directory.CreateDirectory(Path.Combine(store, "blobs"));
        var gguf = Path.Combine(temp.Path, "reader.gguf");
        GgufConverter.FromHuggingFace(SharedAssets.EmbeddedReader, gguf);
        var digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(gguf)));
        File.Move(gguf, Path.Combine(store, "blobs", $"sha256-{digest}"));
        var manifests = Directory.CreateDirectory(Path.Combine(store, "manifests", "registry.ollama.ai", "library", "reader")).FullName;
        File.WriteAllText(Path.Combine(manifests, "latest"), $$"""{"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:{{digest}}"}]}""");

        var before = (Environment.GetEnvironmentVariable("HF_HUB_CACHE"), Environment.GetEnvironmentVariable("OLLAMA_MODELS"));
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", Path.Combine(temp.Path, "hub"));
        Environment.SetEnvironmentVariable("OLLAMA_MODELS", store);
        try
        {
            var (_, expected, _) = await CliRunner.RunAsync([.. Ask, "--model", SharedAssets.EmbeddedReader]);
            foreach (var reference in new[] { "hf:mirage/reader", "mirage/reader", "ollama:reader", "ollama:reader:latest" })
            {
                var (exitCode, output, error) = await CliRunner.RunAsync([.. Ask, "--model", reference]);
                Assert.True(exitCode == 0, $"{reference}: {error}");
                Assert.Equal(expected.Split('\n')[0], output.Split('\n')[0]);
            }
            var (missing, _, said) = await CliRunner.RunAsync([.. Ask, "--model", "ollama:nothing"]);
            Assert.Equal(1, missing);
            Assert.Contains("found: reader:latest", said);
        }
        finally
        {
            Environment.SetEnvironmentVariable("HF_HUB_CACHE", before.Item1);
            Environment.SetEnvironmentVariable("OLLAMA_MODELS", before.Item2);
        }
    }
}
