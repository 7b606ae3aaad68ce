using System.Text.Json;
using Mirage.Tests;

namespace Mirage.Core.Tests.Models;

/// <summary>The reference outputs beside the shared stories260K checkpoint (from an independent float64 implementation).</summary>
public sealed record Stories260KPrompt(string Prompt, int[] Ids, double[] LastLogits, int[] GreedyIds, string GreedyText)
{
    public static IReadOnlyList<Stories260KPrompt> Load()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedAssets.Stories260KHf, "reference.json")));
        return document.RootElement.GetProperty("prompts").EnumerateArray().Select(p => new Stories260KPrompt(
            p.GetProperty("prompt").GetString()!,
            p.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
            p.GetProperty("logits_last_float64").EnumerateArray().Select(x => x.GetDouble()).ToArray(),
            p.GetProperty("greedy_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
            p.GetProperty("greedy_text").GetString()!)).ToList();
    }

    public static TheoryData<int> Indices => new(0, 1, 2);
}
