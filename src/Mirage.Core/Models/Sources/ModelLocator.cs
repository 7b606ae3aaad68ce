namespace Mirage.Core.Models.Sources;

/// <summary>A model reference resolved to files on this machine.</summary>
/// <param name="Directory">The checkpoint folder, or the GGUF file.</param>
/// <param name="ModelId">The name results carry: the folder's or file's name, <c>ORG/NAME</c> for a hub model, <c>NAME:TAG</c> for an Ollama one.</param>
/// <param name="IsGguf">Whether <paramref name="Directory"/> is a GGUF file.</param>
public sealed record LocatedModel(string Directory, string ModelId, bool IsGguf = false);

/// <summary>Turns what a user typed after <c>--model</c> into a checkpoint folder (see <see cref="ModelReference"/>).</summary>
public static class ModelLocator
{
    /// <summary>Resolves <paramref name="reference"/> against this machine's folders, hub cache and Ollama store.</summary>
    /// <exception cref="MirageException">Nothing is there, or the source's format cannot be loaded; the message says what was looked for and where.</exception>
    public static LocatedModel Locate(string reference)
    {
        var parsed = ModelReference.Parse(reference);
        switch (parsed.Kind)
        {
            case ModelSourceKind.HuggingFace:
                try
                {
                    return new LocatedModel(HuggingFaceCache.FromEnvironment().Snapshot(parsed.Name, parsed.Tag!), parsed.Name);
                }
                catch (MirageException e) when (!parsed.Text.TrimStart().StartsWith("hf:", StringComparison.OrdinalIgnoreCase))
                {
                    // A plain ORG/NAME may have been meant as a relative folder.
                    throw new MirageException($"No folder '{parsed.Text}' exists here ({Directory.GetCurrentDirectory()}), and {char.ToLowerInvariant(e.Message[0])}{e.Message[1..]}", e);
                }
            case ModelSourceKind.Ollama:
                return new LocatedModel(OllamaStore.FromEnvironment().ModelFile(parsed.Name, parsed.Tag!), $"{parsed.Name}:{parsed.Tag}", IsGguf: true);
            case ModelSourceKind.GgufFile:
                return File.Exists(parsed.Name)
                    ? new LocatedModel(parsed.Name, Path.GetFileNameWithoutExtension(parsed.Name), IsGguf: true)
                    : throw new InvalidCheckpointException($"GGUF file '{parsed.Name}' does not exist.");
            default:
                if (!Directory.Exists(parsed.Name))
                    throw new InvalidCheckpointException($"Model folder '{parsed.Name}' does not exist.");
                return new LocatedModel(parsed.Name, Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(parsed.Name))));
        }
    }
}
