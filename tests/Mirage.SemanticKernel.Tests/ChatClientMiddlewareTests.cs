using Microsoft.Extensions.AI;
using Mirage.Core.Citations;
using Mirage.Eval.Data;

namespace Mirage.SemanticKernel.Tests;

public sealed class ChatClientMiddlewareTests(ReaderFixture reader)
{
    private static AIFunction Search(AlceItem item) =>
        AIFunctionFactory.Create((string query) => ReaderFixture.SearchResults(item), "search_documents", "Searches the document store.");

    private IChatClient Pipeline(MirageCitationService service, IChatClient? model = null) =>
        new ChatClientBuilder(model ?? new ToolCallingReader(reader.ChatClient)).UseMirageCitations(service).UseFunctionInvocation().Build();

    // A conversation in which retrieval already ran as a tool call: the passages are in the history.
    private static List<ChatMessage> RetrievedHistory(AlceItem item) =>
    [
        new(ChatRole.User, item.Question),
        new(ChatRole.Assistant, [new FunctionCallContent("call-0", "search_documents", new Dictionary<string, object?> { ["query"] = item.Question })]),
        new(ChatRole.Tool, [new FunctionResultContent("call-0", ReaderFixture.SearchResults(item))]),
        new(ChatRole.User, item.Question),
    ];

    [Fact]
    public async Task ToolPipeline_AnnotatesTheAnswerWithCitationAnnotations()
    {
        var item = ReaderFixture.Items[5];
        var response = await Pipeline(reader.Service()).GetResponseAsync([new ChatMessage(ChatRole.User, item.Question)], new ChatOptions { Tools = [Search(item)] });
        var citations = response.GetCitations();
        await CitationAssertions.AreTheEnginesCitations(citations, reader, item, response.Text);
        Assert.Equal(CitationMode.Faithful, citations!.Mode);
        CitationAssertions.CiteTheGeneratedIds(citations, GeneratedTokenIds.From(response.Messages[^1].AdditionalProperties));

        // The same citations as M.E.AI annotations on the answer's text, spans in its UTF-16 units.
        var text = response.Messages[^1].Contents.OfType<TextContent>().Single();
        var annotations = text.Annotations!.OfType<CitationAnnotation>().ToList();
        Assert.Equal(citations.Sentences.Sum(s => s.Citations.Count), annotations.Count);
        foreach (var annotation in annotations)
        {
            var region = Assert.IsType<TextSpanAnnotatedRegion>(Assert.Single(annotation.AnnotatedRegions!));
            var passage = citations.Passages.Single(p => p.Id == (string)annotation.AdditionalProperties!["passage_id"]!);
            Assert.Equal(passage.Url, annotation.Url!.ToString());
            Assert.Equal(passage.Text, annotation.Snippet);
            // The region is the cited sentence, in the text content's own UTF-16 units.
            Assert.Contains(citations.Sentences, c => c.Text == text.Text[region.StartIndex!.Value..region.EndIndex!.Value] && c.Citations.Any(x => x.PassageId == passage.Id));
        }
    }

    [Fact]
    public async Task StreamingToolPipeline_PassesUpdatesThrough_ThenATrailingUpdateWithAnnotations()
    {
        var item = ReaderFixture.Items[6];
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in Pipeline(reader.Service()).GetStreamingResponseAsync([new ChatMessage(ChatRole.User, item.Question)], new ChatOptions { Tools = [Search(item)] }))
            updates.Add(update);
        var trailer = updates[^1];
        var citations = trailer.GetCitations();
        var answer = string.Concat(updates[..^1].Where(u => !u.Contents.Any(c => c is FunctionCallContent or FunctionResultContent)).Select(u => u.Text));
        await CitationAssertions.AreTheEnginesCitations(citations, reader, item, answer);
        CitationAssertions.CiteTheGeneratedIds(citations, updates[..^1].SelectMany(u => GeneratedTokenIds.From(u.AdditionalProperties) ?? []).ToList());
        var annotations = Assert.Single(trailer.Contents).Annotations!.OfType<CitationAnnotation>().ToList();
        Assert.Equal(citations!.Sentences.Sum(s => s.Citations.Count), annotations.Count);
        Assert.All(updates[..^1], u => Assert.Null(u.GetCitations()));
    }

    [Fact]
    public async Task RemoteModelAnswer_IsCitedInProxyMode_ByTheLocalModel()
    {
        var item = ReaderFixture.Items[7];
        var response = await Pipeline(reader.Service(), new RemoteModel(item.Output)).GetResponseAsync(RetrievedHistory(item));
        var citations = response.GetCitations();
        await CitationAssertions.AreTheEnginesCitations(citations, reader, item, response.Text);
        Assert.Equal(CitationMode.Proxy, citations!.Mode);
        Assert.Equal(RemoteModel.Id, citations.AnswerModel);
        Assert.Equal(reader.Model.ModelId, citations.AttributionModel);
        Assert.Contains("\"mode\": \"proxy\"", citations.ToJson());
    }

    [Fact]
    public async Task MethodAndVerification_ComeFromTheOptions()
    {
        var item = ReaderFixture.Items[8];
        var service = reader.Service(o => { o.Method = Mirage.Core.Citations.CitationMethod.Cci; o.Verify = true; });
        var citations = (await Pipeline(service, new RemoteModel(item.Output)).GetResponseAsync(RetrievedHistory(item))).GetCitations();
        var details = citations!.Details!;
        Assert.Equal(Mirage.Core.Citations.CitationMethod.Cci, details.Options.Method);
        Assert.NotEmpty(details.Cues);
        Assert.Contains(details.Sentences, s => s.Citations.Count > 0);
        Assert.All(details.Sentences, s => Assert.Equal(s.Citations.Count > 0, s.Support is not null));

        // The default: passage ablation, unverified.
        var plain = (await Pipeline(reader.Service(), new RemoteModel(item.Output)).GetResponseAsync(RetrievedHistory(item))).GetCitations()!.Details!;
        Assert.Equal(Mirage.Core.Citations.CitationMethod.Ablation, plain.Options.Method);
        Assert.NotNull(plain.Ablation);
        Assert.All(plain.Sentences, s => Assert.Null(s.Support));
    }

    [Fact]
    public async Task Failures_KeepTheAnswer_WithAMachineReadableReason()
    {
        var item = ReaderFixture.Items[8];
        // No retrieval in the conversation.
        var none = await Pipeline(reader.Service(), new RemoteModel(item.Output)).GetResponseAsync([new ChatMessage(ChatRole.User, item.Question)]);
        Assert.Equal(item.Output, none.Text);
        Assert.Equal(CitationStatus.NoPassages, none.GetCitations()!.Status);

        // An answer longer than the attribution model's context.
        var essay = string.Join(" ", Enumerable.Repeat(item.Output, 400));
        var tooLong = await Pipeline(reader.Service(), new RemoteModel(essay)).GetResponseAsync(RetrievedHistory(item));
        Assert.Equal(essay, tooLong.Text);
        Assert.Equal(CitationStatus.TooLong, tooLong.GetCitations()!.Status);
        Assert.Contains("context", tooLong.GetCitations()!.Reason);

        // Citations slower than the timeout: an engine that answers only when cancelled, so the
        // timeout is what ends the wait, whatever the machine's speed.
        var stalled = new StalledEngine();
        var late = await Pipeline(new MirageCitationService(stalled, reader.Model.ModelId, new MirageCitationOptions { TimeoutSeconds = 0.2 }), new RemoteModel(item.Output)).GetResponseAsync(RetrievedHistory(item));
        Assert.Equal(item.Output, late.Text);
        Assert.Equal(CitationStatus.TimedOut, late.GetCitations()!.Status);
        Assert.True(await stalled.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(30)));

        // More passages than MaxPassages: none cited, rather than the first ones only.
        var many = Enumerable.Range(0, 21).Select(i => new Mirage.Core.Citations.Passage($"p{i}", $"Note {i}", $"Note {i}.")).ToList();
        var tooMany = await reader.Service().CiteAsync(item.Question, many, item.Output, reader.Model.ModelId);
        Assert.Equal(CitationStatus.TooManyPassages, tooMany.Status);
        Assert.Contains("21 passages were retrieved; at most 20 are cited (MirageCitationOptions.MaxPassages)", tooMany.Reason);
        Assert.Equal(21, tooMany.Passages.Count);

        // The engine itself fails.
        var broken = new MirageCitationService(new FailingEngine(), reader.Model.ModelId);
        var failed = await Pipeline(broken, new RemoteModel(item.Output)).GetResponseAsync(RetrievedHistory(item));
        Assert.Equal(item.Output, failed.Text);
        Assert.Equal(CitationStatus.Failed, failed.GetCitations()!.Status);
        Assert.Contains("attribution backend unavailable", failed.GetCitations()!.Reason);

        // Strict mode turns each of these into an exception.
        var strict = Pipeline(new MirageCitationService(new FailingEngine(), reader.Model.ModelId, new MirageCitationOptions { Strict = true }), new RemoteModel(item.Output));
        var error = await Assert.ThrowsAsync<MirageCitationException>(() => strict.GetResponseAsync(RetrievedHistory(item)));
        Assert.Equal(CitationStatus.Failed, error.Status);
    }

    /// <summary>An engine that works until it is cancelled, and says when it was.</summary>
    private sealed class StalledEngine : ICitationEngine
    {
        public TaskCompletionSource<bool> Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<CitationResult> CiteAsync(CitationRequest request, CancellationToken cancellationToken = default)
        {
            await using var _ = cancellationToken.Register(() => Cancelled.TrySetResult(true));
            await Task.Delay(Timeout.Infinite, cancellationToken);
            throw new InvalidOperationException("unreachable");
        }
    }

    /// <summary>An engine whose backend is down, to exercise the failure path.</summary>
    private sealed class FailingEngine : ICitationEngine
    {
        public Task<CitationResult> CiteAsync(CitationRequest request, CancellationToken cancellationToken = default) =>
            Task.FromException<CitationResult>(new InvalidOperationException("attribution backend unavailable"));
    }
}
