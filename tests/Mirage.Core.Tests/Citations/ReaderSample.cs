using System.Text.Json;
using Mirage.Core.Citations;
using Mirage.Tests;

namespace Mirage.Core.Tests.Citations;

/// <summary>The README's held-out question and its passages (samples/reader-passages.json), for tests with the embedded reader.</summary>
internal static class ReaderSample
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    public const string Question = "Which organisation does Lousdrur Rourti work for, and where was Lousdrur Rourti born?";

    public static IReadOnlyList<Passage> Passages() =>
        JsonSerializer.Deserialize<List<Passage>>(File.ReadAllText(Path.Combine(SharedAssets.RepositoryRoot, "samples", "reader-passages.json")), Web)!;
}
