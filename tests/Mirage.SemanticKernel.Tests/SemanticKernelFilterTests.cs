using Microsoft.Extensions.DependencyInjection;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.Data;
using Mirage.Core.Citations;
using Mirage.Eval.Data;

namespace Mirage.SemanticKernel.Tests;

public sealed class SemanticKernelFilterTests(ReaderFixture reader)
{
    private static readonly Dictionary<string, AlceItem> ByQuestion = ReaderFixture.Items.GroupBy(i => i.Question).ToDictionary(g => g.Key, g => g.First());

    // A RAG app: a search plugin, a native function that lays the results out for the reader, and
    // a prompt function over it, answered by the reader through SK's IChatClient bridge.
    private Kernel RagKernel(MirageCitationService service, bool withSearch = true)
    {
        var builder = Kernel.CreateBuilder();
        builder.Services.AddSingleton<IChatCompletionService>(reader.ChatClient.AsChatCompletionService());
        var kernel = builder.Build();
        kernel.Plugins.AddFromFunctions("Search", [KernelFunctionFactory.CreateFromMethod((string query) => ReaderFixture.SearchResults(ByQuestion[query]), "GetDocuments")]);
        kernel.Plugins.AddFromFunctions("Reader", [KernelFunctionFactory.CreateFromMethod(async (Kernel k, string question) =>
        {
            var found = withSearch ? (await k.InvokeAsync("Search", "GetDocuments", new() { ["query"] = question })).GetValue<List<TextSearchResult>>()! : [];
            return ReaderFixture.ReaderPrompt(question, found.Select(r => new Passage(null, r.Name, r.Value)));
        }, "Prompt")]);
        return kernel.UseMirageCitations(service);
    }

    private static KernelFunction Answer(Kernel kernel) =>
        kernel.CreateFunctionFromPrompt(new PromptTemplateConfig("{{Reader.Prompt $question}}") { AllowDangerouslySetContent = true });

    [Fact]
    public async Task PromptFunctionWithSearchPlugin_AnswerCitesThePassageHoldingTheFact()
    {
        var kernel = RagKernel(reader.Service());
        foreach (var item in ReaderFixture.Items.Take(3))
        {
            var result = await kernel.InvokeAsync(Answer(kernel), new() { ["question"] = item.Question });
            var citations = result.GetCitations();
            await CitationAssertions.AreTheEnginesCitations(citations, reader, item, result.ToString());
            Assert.Equal(CitationMode.Faithful, citations!.Mode);
            Assert.Same(citations, result.GetValue<ChatMessageContent>()!.GetCitations());
            CitationAssertions.CiteTheGeneratedIds(citations, GeneratedTokenIds.From(result.GetValue<ChatMessageContent>()!.Metadata));
            // Ids are the search results' links.
            Assert.All(citations.Sentences.SelectMany(s => s.Citations), c => Assert.Equal(ReaderFixture.Link(item, c.PassageIndex), c.PassageId));
            // Each sentence that states a fact cites a passage its value is written in (source gold, from the item's facts).
            var gold = SourceGold.For(item.Docs, citations.Sentences.Select(s => new SentenceSpan(s.Start, s.End, s.Text)).ToList());
            Assert.NotNull(gold);
            for (int s = 0; s < citations.Sentences.Count; s++)
                if (gold.Value.Gold[s].Length > 0)
                    Assert.Contains(citations.Sentences[s].Citations, c => gold.Value.Gold[s].Contains(c.PassageIndex));
        }
    }

    [Fact]
    public async Task StreamingPromptFunction_PassesChunksThrough_ThenATrailingChunkWithCitations()
    {
        var kernel = RagKernel(reader.Service());
        var item = ReaderFixture.Items[3];
        var chunks = new List<StreamingChatMessageContent>();
        await foreach (var chunk in kernel.InvokeStreamingAsync<StreamingChatMessageContent>(Answer(kernel), new() { ["question"] = item.Question }))
            chunks.Add(chunk);
        Assert.True(chunks.Count > 3);
        Assert.All(chunks[..^1], c => Assert.Null(c.GetCitations()));
        var answer = string.Concat(chunks.Select(c => c.Content));
        await CitationAssertions.AreTheEnginesCitations(chunks[^1].GetCitations(), reader, item, answer);
        CitationAssertions.CiteTheGeneratedIds(chunks[^1].GetCitations(), chunks[..^1].SelectMany(c => GeneratedTokenIds.From(c.Metadata) ?? []).ToList());
    }

    [Fact]
    public async Task AutoFunctionCalling_CapturesTheToolResults_AndCitesTheFinalAnswer()
    {
        var builder = Kernel.CreateBuilder();
        // SK runs kernel functions that an IChatClient asks for once the client has kernel function invocation.
        var client = new Microsoft.Extensions.AI.ChatClientBuilder(new ToolCallingReader(reader.ChatClient)).UseKernelFunctionInvocation().Build();
        builder.Services.AddSingleton<IChatCompletionService>(client.AsChatCompletionService());
        var kernel = builder.Build();
        kernel.Plugins.AddFromFunctions("Search", [KernelFunctionFactory.CreateFromMethod((string query) => ReaderFixture.SearchResults(ByQuestion[query]), "GetDocuments")]);
        kernel.UseMirageCitations(reader.Service());
        var ask = kernel.CreateFunctionFromPrompt("{{$question}}", new PromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() });
        var item = ReaderFixture.Items[4];
        var result = await kernel.InvokeAsync(ask, new() { ["question"] = item.Question });
        await CitationAssertions.AreTheEnginesCitations(result.GetCitations(), reader, item, result.ToString());
    }

    [Fact]
    public async Task ConcurrentRequests_EachCitesOnlyItsOwnPassages()
    {
        var kernel = RagKernel(reader.Service());
        var function = Answer(kernel);
        var items = ReaderFixture.Items.Take(16).ToList();
        var results = await Task.WhenAll(items.Select(item => Task.Run(() => kernel.InvokeAsync(function, new() { ["question"] = item.Question }))));
        for (int i = 0; i < items.Count; i++)
        {
            var citations = results[i].GetCitations()!;
            await CitationAssertions.AreTheEnginesCitations(citations, reader, items[i], results[i].ToString());
            var cited = citations.Sentences.SelectMany(s => s.Citations).ToList();
            Assert.NotEmpty(cited);
            Assert.All(cited, c => Assert.StartsWith(ReaderFixture.Link(items[i], 0)[..^1], c.PassageId));
        }
    }

    [Fact]
    public async Task NoRetrieval_KeepsTheAnswer_AndSaysWhy()
    {
        var kernel = RagKernel(reader.Service(), withSearch: false);
        var result = await kernel.InvokeAsync(Answer(kernel), new() { ["question"] = ReaderFixture.Items[0].Question });
        Assert.False(string.IsNullOrWhiteSpace(result.ToString()));
        var citations = result.GetCitations()!;
        Assert.Equal(CitationStatus.NoPassages, citations.Status);
        Assert.Contains("RetrievalFunctions", citations.Reason);
        Assert.Empty(citations.Sentences);

        var strict = RagKernel(reader.Service(o => o.Strict = true), withSearch: false);
        var error = await Assert.ThrowsAsync<MirageCitationException>(() => strict.InvokeAsync(Answer(strict), new() { ["question"] = ReaderFixture.Items[0].Question }));
        Assert.Equal(CitationStatus.NoPassages, error.Status);
    }

    [Fact]
    public async Task ARetrievalFunctionReturningQdrantPoints_GetsCitationsWithThePointIds()
    {
        var item = ReaderFixture.Items[4];
        var builder = Kernel.CreateBuilder();
        builder.Services.AddSingleton<IChatCompletionService>(reader.ChatClient.AsChatCompletionService());
        var kernel = builder.Build();
        // Any function name: the return type says these are search results.
        kernel.Plugins.AddFromFunctions("Store", [KernelFunctionFactory.CreateFromMethod((string query) => (IReadOnlyList<Qdrant.Client.Grpc.ScoredPoint>)item.Docs.Select((d, i) =>
        {
            var point = new Qdrant.Client.Grpc.ScoredPoint { Id = new() { Num = (ulong)(100 + i) }, Score = 1f / (i + 1) };
            point.Payload["text"] = new() { StringValue = d.Text };
            point.Payload["title"] = new() { StringValue = d.Title };
            return point;
        }).ToList(), "Points")]);
        kernel.Plugins.AddFromFunctions("Reader", [KernelFunctionFactory.CreateFromMethod(async (Kernel k, string question) =>
        {
            var points = (await k.InvokeAsync("Store", "Points", new() { ["query"] = question })).GetValue<IReadOnlyList<Qdrant.Client.Grpc.ScoredPoint>>()!;
            return ReaderFixture.ReaderPrompt(question, points.Select(p => new Passage(null, p.Payload["title"].StringValue, p.Payload["text"].StringValue)));
        }, "Prompt")]);
        kernel.UseMirageCitations(reader.Service());

        var result = await kernel.InvokeAsync(Answer(kernel), new() { ["question"] = item.Question });
        var citations = result.GetCitations();
        await CitationAssertions.AreTheEnginesCitations(citations, reader, item, result.ToString());
        Assert.Equal(Enumerable.Range(100, item.Docs.Count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), citations!.Passages.Select(p => p.Id));
        Assert.NotEmpty(citations.Sentences.SelectMany(s => s.Citations));
    }
}
