namespace Mirage.Core.Citations;

/// <summary>A retrieved passage to cite.</summary>
/// <param name="Id">A stable id (a link, a document id); when null the 1-based index is used.</param>
/// <param name="Title">The title shown in the prompt, if any.</param>
/// <param name="Text">The passage text.</param>
/// <param name="Url">Where the passage came from, if known.</param>
public sealed record Passage(string? Id, string? Title, string Text, string? Url = null);
