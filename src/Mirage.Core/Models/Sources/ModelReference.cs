namespace Mirage.Core.Models.Sources;

/// <summary>Where a model reference points.</summary>
public enum ModelSourceKind
{
    /// <summary>A Hugging Face checkpoint folder.</summary>
    Folder,
    /// <summary>A GGUF file (llama.cpp, Ollama, LM Studio).</summary>
    GgufFile,
    /// <summary>A model in Ollama's store: <c>ollama:NAME[:TAG]</c>.</summary>
    Ollama,
    /// <summary>A snapshot in the Hugging Face hub cache: <c>hf:ORG/NAME[@REVISION]</c>, or <c>ORG/NAME</c> when no such path exists.</summary>
    HuggingFace,
}

/// <summary>
/// What a user typed after <c>--model</c>, parsed: a folder, a <c>.gguf</c> file,
/// <c>ollama:NAME[:TAG]</c>, <c>hf:ORG/NAME[@REVISION]</c>, or a plain <c>ORG/NAME</c> that names
/// no local path.
/// </summary>
/// <param name="Kind">The kind of source.</param>
/// <param name="Text">The reference as given.</param>
/// <param name="Name">A folder or file path; the Ollama model name; the hub repository (<c>ORG/NAME</c>).</param>
/// <param name="Tag">The Ollama tag (default <c>latest</c>) or hub revision (default <c>main</c>); null for paths.</param>
public sealed record ModelReference(ModelSourceKind Kind, string Text, string Name, string? Tag = null)
{
    /// <summary>Parses a reference; throws naming the accepted forms when it is none of them.</summary>
    public static ModelReference Parse(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var text = reference.Trim();
        if (text.Length == 0)
            throw new MirageException("The model reference is empty; give a folder, a .gguf file, ollama:NAME[:TAG] or hf:ORG/NAME[@REVISION].");
        if (text.StartsWith("ollama:", StringComparison.OrdinalIgnoreCase))
        {
            var rest = text["ollama:".Length..];
            int colon = rest.LastIndexOf(':');
            var (name, tag) = colon > 0 && !rest[colon..].Contains('/') ? (rest[..colon], rest[(colon + 1)..]) : (rest, "latest");
            return new ModelReference(ModelSourceKind.Ollama, reference, CheckName(name, reference, allowRegistry: true), CheckName(tag, reference, allowRegistry: false));
        }
        if (text.StartsWith("hf:", StringComparison.OrdinalIgnoreCase))
            return HubReference(text["hf:".Length..], reference);
        if (text.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            return new ModelReference(ModelSourceKind.GgufFile, reference, text);
        // ORG/NAME that names no local path is a hub repository; anything else is a folder.
        if (!Path.Exists(text) && !Path.IsPathRooted(text) && !text.StartsWith('.') && text.Count(c => c == '/') == 1 && !text.Contains('\\'))
            return HubReference(text, reference);
        return new ModelReference(ModelSourceKind.Folder, reference, text);
    }

    private static ModelReference HubReference(string text, string reference)
    {
        int at = text.IndexOf('@');
        var (repo, revision) = at >= 0 ? (text[..at], text[(at + 1)..]) : (text, "main");
        var parts = repo.Split('/');
        if (parts.Length != 2)
            throw new MirageException($"'{reference}' is not a Hugging Face repository: write ORG/NAME (for example hf:HuggingFaceTB/SmolLM2-135M).");
        foreach (var part in parts)
            CheckName(part, reference, allowRegistry: false);
        return new ModelReference(ModelSourceKind.HuggingFace, reference, repo, CheckName(revision, reference, allowRegistry: false));
    }

    // Names become folder names in a cache: letters, digits and . _ - only (a registry path may have /), never "." or "..".
    private static string CheckName(string name, string reference, bool allowRegistry)
    {
        bool valid = name.Length is > 0 and <= 256 && name.Split('/').All(part => part.Length > 0 && part != "." && part != ".."
            && part.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            && (allowRegistry || !name.Contains('/'));
        return valid ? name : throw new MirageException($"'{reference}' has an invalid name '{name}': use letters, digits, '.', '_' and '-'.");
    }
}
