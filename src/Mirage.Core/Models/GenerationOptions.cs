namespace Mirage.Core.Models;

/// <summary>How to continue a prompt.</summary>
public sealed record GenerationOptions
{
    /// <summary>The most new tokens to generate.</summary>
    /// <value>Default 128. Generation also stops at the model's context length.</value>
    public int MaxTokens { get; init; } = 128;

    /// <summary>Sampling temperature; 0 means greedy (argmax).</summary>
    /// <value>Default 0.</value>
    public double Temperature { get; init; }

    /// <summary>Nucleus sampling: sample from the smallest set of tokens whose probability reaches this.</summary>
    /// <value>Default 1 (no truncation). Ignored when greedy.</value>
    public double TopP { get; init; } = 1.0;

    /// <summary>Seed for sampling, so a sampled run can be repeated; null for a random seed.</summary>
    public long? Seed { get; init; }

    /// <summary>Strings that end generation; the text returned stops before the first one.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Whether an end-of-sequence token ends generation.</summary>
    /// <value>Default true.</value>
    public bool StopAtEos { get; init; } = true;

    /// <summary>
    /// Keep what citing the answer would compute again (<see cref="GenerationResult.Trace"/>: the
    /// prompt's KV cache and each token's logits), so a citation skips its pass over prompt and
    /// answer. <c>Generate</c> returns it, and a <c>GenerateTokens</c> overload hands it over at the
    /// stream's end; kept while the logits take at most 256 MiB.
    /// </summary>
    /// <value>Default false.</value>
    public bool KeepTrace { get; init; }

    /// <summary>Throws when a value is out of range, naming it and the accepted range.</summary>
    public void Validate()
    {
        if (MaxTokens < 1)
            throw new MirageException($"MaxTokens must be at least 1, got {MaxTokens}.");
        if (Temperature < 0 || double.IsNaN(Temperature))
            throw new MirageException($"Temperature must be 0 (greedy) or positive, got {Temperature}.");
        if (TopP is <= 0 or > 1 || double.IsNaN(TopP))
            throw new MirageException($"TopP must be in (0, 1], got {TopP}.");
        if (StopStrings.Any(string.IsNullOrEmpty))
            throw new MirageException("Stop strings must not be empty.");
    }
}
