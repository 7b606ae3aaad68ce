using System.Text.Json;

namespace Mirage.Core.Models.Sources;

/// <summary>
/// Ollama's model store: <c>manifests/HOST/NAMESPACE/NAME/TAG</c> (registry.ollama.ai/library for
/// plain names) is a JSON manifest whose layer of media type
/// <c>application/vnd.ollama.image.model</c> names the GGUF blob <c>blobs/sha256-HEX</c>. Its root is
/// <c>$OLLAMA_MODELS</c>, else <c>~/.ollama/models</c>.
/// </summary>
public sealed class OllamaStore(string root)
{
    private const string ModelLayer = "application/vnd.ollama.image.model";
    private const long MaxManifestBytes = 1 << 20;

    /// <summary>The store root.</summary>
    public string Root { get; } = root;

    /// <summary>The store the environment names.</summary>
    public static OllamaStore FromEnvironment() => new(
        Environment.GetEnvironmentVariable("OLLAMA_MODELS") is { Length: > 0 } models ? models
        : Path.Combine(ModelFiles.HomeFolder(instead: "OLLAMA_MODELS"), ".ollama", "models"));

    /// <summary>The GGUF file of model <paramref name="name"/> (<c>NAME</c>, <c>NAMESPACE/NAME</c> or <c>HOST/NAMESPACE/NAME</c>) at <paramref name="tag"/>.</summary>
    /// <exception cref="MirageException">No such model (the message lists the models found), or a damaged manifest.</exception>
    public string ModelFile(string name, string tag)
    {
        var parts = name.Split('/');
        var path = parts.Length switch
        {
            1 => ["registry.ollama.ai", "library", parts[0]],
            2 => ["registry.ollama.ai", parts[0], parts[1]],
            _ => parts,
        };
        var manifest = Path.Combine([Root, "manifests", .. path, tag]);
        if (!File.Exists(manifest))
        {
            var found = Installed();
            throw new MirageException($"Ollama has no model '{name}:{tag}' (looked for {manifest}); "
                + (found.Count == 0 ? $"no models were found under {Path.Combine(Root, "manifests")}." : $"found: {string.Join(", ", found)}."));
        }
        string? digest;
        try
        {
            using var document = JsonDocument.Parse(ModelFiles.ReadBytes(manifest, MaxManifestBytes));
            digest = document.RootElement.TryGetProperty("layers", out var layers) && layers.ValueKind == JsonValueKind.Array
                ? layers.EnumerateArray().Where(l => l.ValueKind == JsonValueKind.Object
                        && l.TryGetProperty("mediaType", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == ModelLayer)
                    .Select(l => l.TryGetProperty("digest", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null).FirstOrDefault()
                : null;
        }
        catch (JsonException e)
        {
            throw new MirageException($"'{manifest}' is not valid JSON: {e.Message}", e);
        }
        if (digest is null || !digest.StartsWith("sha256:", StringComparison.Ordinal) || digest.Length != 71 || !digest[7..].All(char.IsAsciiHexDigit))
            throw new MirageException($"'{manifest}' names no model layer ({ModelLayer}) with a sha256 digest.");
        var blob = Path.Combine(Root, "blobs", "sha256-" + digest[7..]);
        return File.Exists(blob) ? blob : throw new MirageException($"'{manifest}' names the blob {blob}, which is missing; run 'ollama pull {name}:{tag}' again.");
    }

    /// <summary>The models in the store, as <c>NAME:TAG</c> the way <c>ollama:</c> takes them (the default registry and library left out).</summary>
    public IReadOnlyList<string> Installed()
    {
        var manifests = Path.Combine(Root, "manifests");
        if (!Directory.Exists(manifests))
            return [];
        return Directory.EnumerateFiles(manifests, "*", SearchOption.AllDirectories).Take(10_000)
            .Select(f => Path.GetRelativePath(manifests, f).Split(Path.DirectorySeparatorChar))
            .Where(p => p.Length >= 4)
            .Select(p => string.Join('/', p[0] != "registry.ollama.ai" ? p[..^1] : p[1] == "library" ? p[2..^1] : p[1..^1]) + ":" + p[^1])
            .Order(StringComparer.Ordinal).ToList();
    }
}
