using System.Diagnostics;
using Mirage.Core.Models;
using Mirage.Core.Models.Sources;
using Mirage.Tests;

namespace Mirage.Core.Tests.Models.Sources;

/// <summary>
/// A model's small files may be links to devices, pipes or huge files in a cache someone else
/// filled: only regular files are read, sizes are checked first, and caches never land in the
/// working folder.
/// </summary>
[Collection(nameof(EnvironmentVariables))]
public sealed class SpecialFileTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static void MakeFifo(string path)
    {
        using var mkfifo = Process.Start("mkfifo", path);
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
    }

    [Theory]
    [InlineData("config.json", "device")]
    [InlineData("tokenizer.json", "device")]
    [InlineData("tokenizer_config.json", "fifo")]
    [InlineData("model.safetensors", "fifo")]
    [InlineData("config.json", "huge")]
    public void AModelFileThatIsADeviceAPipeOrTooLarge_IsRefusedInOneLine(string file, string kind)
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "Devices and pipes are Linux files here.");
        var directory = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config());
        var path = Path.Combine(directory, file);
        File.Delete(path);
        switch (kind)
        {
            case "device":
                File.CreateSymbolicLink(path, "/dev/zero");
                break;
            case "fifo":
                MakeFifo(path);
                break;
            default:
                using (var stream = File.Create(path))
                    stream.SetLength(17 << 20);
                break;
        }

        var watch = Stopwatch.StartNew();
        var error = Assert.Throws<InvalidCheckpointException>(() => LanguageModel.Load(directory).Dispose());
        Assert.InRange(watch.Elapsed.TotalSeconds, 0, 30);
        Assert.Contains(path, error.Message);
        Assert.Contains(kind == "huge" ? "is 17,825,792 bytes, more than the 16,777,216" : "is not a regular file", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void AnOllamaManifestLinkedToADevice_IsRefused()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "Devices are Linux files here.");
        var manifests = Directory.CreateDirectory(Path.Combine(_temp.Path, "ollama", "manifests", "registry.ollama.ai", "library", "tiny")).FullName;
        File.CreateSymbolicLink(Path.Combine(manifests, "latest"), "/dev/zero");
        var error = Assert.Throws<InvalidCheckpointException>(() => new OllamaStore(Path.Combine(_temp.Path, "ollama")).ModelFile("tiny", "latest"));
        Assert.Contains("is not a regular file", error.Message);
    }

    [Fact]
    public void ARefsFileThatIsAPipe_IsRefused_NotWaitedOn()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "Pipes are Linux files here.");
        var refs = Directory.CreateDirectory(Path.Combine(_temp.Path, "hub", "models--org--model", "refs")).FullName;
        MakeFifo(Path.Combine(refs, "main"));
        var error = Assert.Throws<InvalidCheckpointException>(() => new HuggingFaceCache(Path.Combine(_temp.Path, "hub")).Snapshot("org/model", "main"));
        Assert.Contains("is not a regular file", error.Message);
    }

    [Fact]
    public void TheCaches_NeverLandInTheWorkingFolder_AndAMissingHomeIsStillUsedAsHome()
    {
        using (EnvironmentVariables.Set("HF_HUB_CACHE", null))
        using (EnvironmentVariables.Set("HF_HOME", null))
        using (EnvironmentVariables.Set("OLLAMA_MODELS", null))
        {
            // Without HOME, the account's home folder from the password database.
            using (EnvironmentVariables.Set("HOME", null))
            {
                Assert.True(Path.IsPathRooted(HuggingFaceCache.FromEnvironment().Root));
                Assert.True(Path.IsPathRooted(OllamaStore.FromEnvironment().Root));
            }
            var missing = Path.Combine(_temp.Path, "no-such-home");
            using (EnvironmentVariables.Set("HOME", missing))
                Assert.Equal(Path.Combine(missing, ".cache", "huggingface", "hub"), HuggingFaceCache.FromEnvironment().Root);
        }
    }

    [Theory]
    [InlineData("HF_ENDPOINT", "notaurl", "HF_ENDPOINT 'notaurl' is not an http:// or https:// URL")]
    [InlineData("HF_ENDPOINT", "ftp://mirror", "HF_ENDPOINT 'ftp://mirror' is not an http:// or https:// URL")]
    [InlineData("HF_HUB_CACHE", "FILE", "is a file, not a folder; point HF_HUB_CACHE")]
    public void ABadHubVariable_IsNamed(string variable, string value, string expected)
    {
        if (value == "FILE")
            File.WriteAllText(value = Path.Combine(_temp.Path, "a-file"), "");
        using var _ = EnvironmentVariables.Set(variable, value);
        Assert.Contains(expected, Assert.Throws<MirageException>(HuggingFaceDownloader.FromEnvironment).Message);
    }
}
