using Mirage.Core.Models;
using Mirage.Core.Models.Sources;
using Mirage.Tests;

namespace Mirage.Core.Tests.Models.Sources;

/// <summary>What <c>--model</c> accepts, and where each form is looked up: folders, the Hugging Face cache, Ollama's store.</summary>
[Collection(nameof(EnvironmentVariables))]
public sealed class ModelReferenceTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("ollama:llama3.2", ModelSourceKind.Ollama, "llama3.2", "latest")]
    [InlineData("ollama:llama3.2:1b", ModelSourceKind.Ollama, "llama3.2", "1b")]
    [InlineData("ollama:someone/model:q4", ModelSourceKind.Ollama, "someone/model", "q4")]
    [InlineData("hf:HuggingFaceTB/SmolLM2-135M", ModelSourceKind.HuggingFace, "HuggingFaceTB/SmolLM2-135M", "main")]
    [InlineData("hf:org/name@v1.0", ModelSourceKind.HuggingFace, "org/name", "v1.0")]
    [InlineData("no-such-org/no-such-model", ModelSourceKind.HuggingFace, "no-such-org/no-such-model", "main")]
    [InlineData("./no-such-org/no-such-model", ModelSourceKind.Folder, "./no-such-org/no-such-model", null)]
    [InlineData("/models/llama", ModelSourceKind.Folder, "/models/llama", null)]
    [InlineData("models/x.Q4_K_M.gguf", ModelSourceKind.GgufFile, "models/x.Q4_K_M.gguf", null)]
    public void References_ParseToTheirSource(string text, ModelSourceKind kind, string name, string? tag)
    {
        var reference = ModelReference.Parse(text);
        Assert.Equal((kind, name, tag), (reference.Kind, reference.Name, reference.Tag));
    }

    [Theory]
    [InlineData("hf:a/b/c", "not a Hugging Face repository")]
    [InlineData("hf:../etc", "invalid name '..'")]
    [InlineData("hf:org/..", "invalid name '..'")]
    [InlineData("hf:org/name@../../x", "invalid name")]
    [InlineData("ollama:../../etc/passwd", "invalid name")]
    [InlineData("  ", "The model reference is empty")]
    public void BadReferences_AreRefusedSayingWhy(string text, string expected) =>
        Assert.Contains(expected, Assert.Throws<MirageException>(() => ModelReference.Parse(text)).Message);

    [Fact]
    public void AHubCacheSnapshot_WithLinksIntoBlobs_LoadsByName_AndAMissingOneSaysWhereItLooked()
    {
        var original = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config());
        var cache = new HuggingFaceCache(Path.Combine(_temp.Path, "hub"));
        const string commit = "0123456789abcdef0123456789abcdef01234567";
        var repository = cache.RepositoryFolder("tiny-org/tiny-model");
        var snapshot = Directory.CreateDirectory(Path.Combine(repository, "snapshots", commit)).FullName;
        Directory.CreateDirectory(Path.Combine(repository, "blobs"));
        foreach (var file in Directory.GetFiles(original))
        {
            var blob = Path.Combine(repository, "blobs", Guid.NewGuid().ToString("N"));
            File.Copy(file, blob);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
        }
        Directory.CreateDirectory(Path.Combine(repository, "refs"));
        File.WriteAllText(Path.Combine(repository, "refs", "main"), commit);

        using var _ = EnvironmentVariables.Set("HF_HUB_CACHE", cache.Root);
        using var direct = TinyCheckpoint.Load(original);
        var ids = TinyCheckpoint.RandomIds(10, 5);
        foreach (var reference in new[] { "hf:tiny-org/tiny-model", "tiny-org/tiny-model", $"hf:tiny-org/tiny-model@{commit}" })
        {
            using var cached = TinyCheckpoint.Load(reference);
            Assert.Equal("tiny-org/tiny-model", cached.ModelId);
            Assert.Equal(0, TinyCheckpoint.MaxDifference(TinyCheckpoint.Logits(direct, ids), TinyCheckpoint.Logits(cached, ids)));
        }

        var missing = Assert.Throws<MirageException>(() => LanguageModel.Load("hf:tiny-org/other@dev"));
        Assert.Contains(Path.Combine(cache.Root, "models--tiny-org--other", "refs", "dev"), missing.Message);
        Assert.Contains("mirage pull tiny-org/other --revision dev", missing.Message);
        // A plain ORG/NAME may have been a relative folder typed in the wrong place: the message says both.
        Assert.StartsWith("No folder 'tiny-org/other' exists here", Assert.Throws<MirageException>(() => LanguageModel.Load("tiny-org/other")).Message);
    }

    [Fact]
    public void AnOllamaModel_ResolvesToItsGgufBlob_AndAnUnknownOneListsWhatIsThere()
    {
        var store = Path.Combine(_temp.Path, "ollama");
        var digest = new string('a', 64);
        Directory.CreateDirectory(Path.Combine(store, "blobs"));
        File.WriteAllText(Path.Combine(store, "blobs", $"sha256-{digest}"), "GGUF");
        foreach (var (path, tag) in new[] { ("registry.ollama.ai/library/tiny", "latest"), ("registry.ollama.ai/someone/other", "q4") })
        {
            var folder = Directory.CreateDirectory(Path.Combine(store, "manifests", path)).FullName;
            File.WriteAllText(Path.Combine(folder, tag), $$"""{"schemaVersion": 2, "layers": [{"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:{{new string('b', 64)}}"}, {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:{{digest}}", "size": 4}]}""");
        }

        var ollama = new OllamaStore(store);
        Assert.Equal(Path.Combine(store, "blobs", $"sha256-{digest}"), ollama.ModelFile("tiny", "latest"));
        Assert.Equal(Path.Combine(store, "blobs", $"sha256-{digest}"), ollama.ModelFile("someone/other", "q4"));
        var unknown = Assert.Throws<MirageException>(() => ollama.ModelFile("nope", "latest"));
        Assert.Contains("found: someone/other:q4, tiny:latest", unknown.Message);

        // The blob is read as GGUF (this one is four bytes, so it is refused as such).
        using var _ = EnvironmentVariables.Set("OLLAMA_MODELS", store);
        var gguf = Assert.Throws<InvalidCheckpointException>(() => LanguageModel.Load("ollama:tiny"));
        Assert.Contains($"sha256-{digest}' is 4 bytes, too short for a GGUF header", gguf.Message);
    }
}

/// <summary>Tests that set process environment variables run one at a time.</summary>
[CollectionDefinition(nameof(EnvironmentVariables), DisableParallelization = true)]
public sealed class EnvironmentVariables
{
    /// <summary>Sets a variable until the result is disposed.</summary>
    public static IDisposable Set(string name, string? value)
    {
        var before = Environment.GetEnvironmentVariable(name);
        Environment.SetEnvironmentVariable(name, value);
        return new Restore(() => Environment.SetEnvironmentVariable(name, before));
    }

    private sealed class Restore(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
