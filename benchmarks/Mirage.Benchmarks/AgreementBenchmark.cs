using Mirage.Core.Citations;
using Mirage.Core.Models;
using static TorchSharp.torch;

namespace Mirage.Benchmarks;

/// <summary>How often float32 and bfloat16 cite the same passages, on story items for stories260K.</summary>
internal static class AgreementBenchmark
{
    private static readonly string[] Names = ["Tim", "Lily", "Ben", "Sue", "Max", "Mia", "Sam", "Anna"];
    private static readonly (string Thing, string Place)[] Things = [("red kite", "park"), ("big ball", "garden"), ("small boat", "lake"), ("new toy", "house")];
    private static readonly string[] Distractors =
    [
        "A big dog liked to run in the garden. It had a ball.",
        "The sun was warm. A small cat slept on the bed.",
        "The birds sang in the tree. The flowers were pretty.",
    ];

    public static (int Sentences, int Agreeing, int Items) Measure(string directory, PromptTemplate prompt)
    {
        using var f32 = LanguageModel.Load(directory, new ComputeOptions { DType = ScalarType.Float32 });
        using var bf16 = LanguageModel.Load(directory, new ComputeOptions { DType = ScalarType.BFloat16 });
        var options = new CitationOptions { Prompt = prompt };
        var a = new MirageCitationEngine(f32, defaults: options);
        var b = new MirageCitationEngine(bf16, defaults: options);
        int sentences = 0, agreeing = 0, items = 0;
        foreach (var name in Names)
        foreach (var (thing, place) in Things)
        {
            var passages = Distractors.Take(2).Select((d, i) => new Passage($"d{i}", null, d)).ToList();
            passages.Insert(items % 3, new Passage("fact", null, $"{name} has a {thing}. {name} likes to play with it in the {place}."));
            var request = new CitationRequest("One day,", passages, $"{name} went to the {place} with the {thing}. {name} was very happy.");
            var x = a.CiteAsync(request).GetAwaiter().GetResult();
            var y = b.CiteAsync(request).GetAwaiter().GetResult();
            foreach (var (s, t) in x.Sentences.Zip(y.Sentences))
            {
                sentences++;
                if (s.Citations.Select(c => c.PassageId).SequenceEqual(t.Citations.Select(c => c.PassageId)))
                    agreeing++;
            }
            items++;
        }
        return (sentences, agreeing, items);
    }
}
