using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Eval.Data;

namespace Mirage.Eval.Harness;

/// <summary>One item's greedy answer as cached: the text and how long generating it took.</summary>
public sealed record GeneratedAnswer(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("answer")] string Answer,
    [property: JsonPropertyName("seconds")] double Seconds);

/// <summary>The answers cache file: which model wrote them, with which prompt, for which items.</summary>
public sealed record GeneratedAnswersFile(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("prompt")] PromptTemplate Prompt,
    [property: JsonPropertyName("max_tokens")] int MaxTokens,
    [property: JsonPropertyName("answers")] IReadOnlyList<GeneratedAnswer> Answers);

/// <summary>
/// <c>--answers generated</c>: the model's own greedy answers to the items (the realistic case:
/// citations must explain what the model wrote, right or wrong), cached in a file so later runs
/// cite the same answers, with <see cref="SourceGold"/> as their gold.
/// </summary>
public static class GeneratedAnswers
{
    private static readonly JsonSerializerOptions Json = new(MirageJson.Options);

    /// <summary>The items with the model's answers as output and source gold; generates what the cache lacks.</summary>
    public static async Task<(IReadOnlyList<AlceItem> Items, double SecondsPerItem, int Empty)> LoadAsync(
        LanguageModel model, IReadOnlyList<AlceItem> items, PromptTemplate template, int maxTokens, string cachePath, TextWriter log, CancellationToken cancellationToken = default)
    {
        string modelKey = $"{model.ModelId} ({model.Directory}, {model.SourceFormat})";
        var cached = new Dictionary<string, GeneratedAnswer>();
        if (File.Exists(cachePath))
        {
            var file = JsonSerializer.Deserialize<GeneratedAnswersFile>(await File.ReadAllTextAsync(cachePath, cancellationToken).ConfigureAwait(false), Json);
            if (file is not null && file.Model == modelKey && file.Prompt == template && file.MaxTokens == maxTokens)
                cached = file.Answers.DistinctBy(a => a.Id).ToDictionary(a => a.Id);
            else
                log.WriteLine($"{cachePath} holds another model's or prompt's answers; generating anew.");
        }
        var clock = Stopwatch.StartNew();
        var answers = new List<GeneratedAnswer>();
        for (int i = 0; i < items.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var item = items[i];
            if (!cached.TryGetValue(item.Id, out var answer))
            {
                var started = Stopwatch.GetTimestamp();
                var prompt = PreparedCitation.AnswerPrompt(model, item.Question, item.ToPassages(), template, cancellationToken);
                var text = model.Generate(prompt, new GenerationOptions { MaxTokens = maxTokens, StopStrings = ["\n"] }, cancellationToken).Text.Trim();
                answer = new GeneratedAnswer(item.Id, text, Stopwatch.GetElapsedTime(started).TotalSeconds);
            }
            answers.Add(answer);
            if ((i + 1) % 100 == 0 && clock.Elapsed.TotalSeconds > 5)
                log.WriteLine($"answers: {i + 1}/{items.Count}");
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(cachePath))!);
        await File.WriteAllTextAsync(cachePath, JsonSerializer.Serialize(new GeneratedAnswersFile(modelKey, template, maxTokens, answers), Json), cancellationToken).ConfigureAwait(false);

        var withAnswers = items.Zip(answers).Where(pair => pair.Second.Answer.Length > 0).Select(pair =>
        {
            var (item, answer) = pair;
            var source = SourceGold.For(item.Docs, SentenceSplitter.Split(answer.Answer));
            return item with { Output = answer.Answer, GoldCitations = source?.Gold, Confusions = source?.Confusions, Facts = null };
        }).ToList();
        return (withAnswers, answers.Average(a => a.Seconds), items.Count - withAnswers.Count);
    }
}
