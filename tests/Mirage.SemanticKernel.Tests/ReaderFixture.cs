using Microsoft.Extensions.AI;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Eval.Data;
using Mirage.SemanticKernel.Tests;
using Mirage.Tests;

[assembly: AssemblyFixture(typeof(ReaderFixture))]

namespace Mirage.SemanticKernel.Tests;

/// <summary>
/// The embedded reader model, loaded once for every test: it generates the test apps' answers
/// (as a local <see cref="IChatClient"/>) and computes their citations.
/// </summary>
public sealed class ReaderFixture : IDisposable
{
    public ReaderFixture()
    {
        Model = LanguageModel.Load(SharedAssets.EmbeddedReader);
        ChatClient = new MirageLocalChatClient(Model);
        Engine = new MirageCitationEngine(Model);
    }

    public LanguageModel Model { get; }

    public MirageLocalChatClient ChatClient { get; }

    public ICitationEngine Engine { get; }

    /// <summary>A citation service over the reader with the given settings.</summary>
    public MirageCitationService Service(Action<MirageCitationOptions>? configure = null)
    {
        var options = new MirageCitationOptions();
        configure?.Invoke(options);
        return new MirageCitationService(Engine, Model.ModelId, options, [new SemanticKernelPassageReader()]);
    }

    /// <summary>Held-out items (never seen in training) with their gold provenance; one per question, so a question finds its own documents.</summary>
    public static IReadOnlyList<AlceItem> Items { get; } = new ReaderDataGenerator(11, DataSplit.Test).Generate(60).DistinctBy(i => i.Question).Take(40).ToList();

    /// <summary>An item's documents as search results, each with its own link.</summary>
    public static List<Microsoft.SemanticKernel.Data.TextSearchResult> SearchResults(AlceItem item) =>
        item.Docs.Select((d, i) => new Microsoft.SemanticKernel.Data.TextSearchResult(d.Text) { Name = d.Title, Link = Link(item, i) }).ToList();

    /// <summary>The link of an item's document.</summary>
    public static string Link(AlceItem item, int index) => $"https://docs.example/{item.Id}/{index}";

    /// <summary>The prompt the reader answers: MIRAGE's layout of the question and documents.</summary>
    public static string ReaderPrompt(string question, IEnumerable<Passage> passages) =>
        new PromptTemplate().Render(question, passages.ToList(), withContext: true).Text;

    public void Dispose()
    {
        ChatClient.Dispose();
        Model.Dispose();
    }
}
