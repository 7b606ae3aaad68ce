using System.Text.Json;
using Microsoft.SemanticKernel.Data;

namespace Mirage.SemanticKernel.Tests;

public sealed class PassageExtractorTests
{
    private readonly PassageExtractor _extractor = new(new PassageMapping(), [new SemanticKernelPassageReader()]);

    private sealed record Chunk(string Key, string Content, string? Source);

    [Fact]
    public void SearchResults_UseLinkThenTitleThenContentHashAsId()
    {
        var passages = _extractor.Extract(new List<TextSearchResult>
        {
            new("a text") { Name = "A", Link = "https://x/a" },
            new("b text") { Name = "B" },
            new("c text"),
        });
        Assert.Equal(["https://x/a", "B", PassageExtractor.ContentId("c text")], passages.Select(p => p.Id));
        Assert.Equal(["a text", "b text", "c text"], passages.Select(p => p.Text));
        Assert.Equal("https://x/a", passages[0].Url);
        Assert.StartsWith("sha256:", passages[2].Id);
        Assert.Equal(PassageExtractor.ContentId("c text"), PassageExtractor.ContentId("c text"));
    }

    private static Qdrant.Client.Grpc.ScoredPoint Point(Qdrant.Client.Grpc.PointId id, params (string Key, Qdrant.Client.Grpc.Value Value)[] payload)
    {
        var point = new Qdrant.Client.Grpc.ScoredPoint { Id = id, Score = 0.5f };
        foreach (var (key, value) in payload)
            point.Payload[key] = value;
        return point;
    }

    [Fact]
    public void QdrantPoints_AreSearchResults_NamedByTheirPointIds_WithPayloadFields()
    {
        IReadOnlyList<Qdrant.Client.Grpc.ScoredPoint> points =
        [
            Point(new() { Num = 42 }, ("text", new() { StringValue = "Lousdrur Rourti works for Cimgun Labs." }), ("title", new() { StringValue = "Lousdrur Rourti" }), ("url", new() { StringValue = "https://x/42" })),
            Point(new() { Uuid = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26" }, ("Text", new() { StringValue = "A second chunk." }), ("page", new() { IntegerValue = 3 })),
            Point(new() { Num = 7 }, ("vector_only", new() { DoubleValue = 1.5 })),
        ];
        Assert.True(_extractor.IsSearchResult(points));
        var passages = _extractor.Extract(points);
        Assert.Equal(["42", "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"], passages.Select(p => p.Id));
        Assert.Equal(["Lousdrur Rourti works for Cimgun Labs.", "A second chunk."], passages.Select(p => p.Text));
        Assert.Equal(("Lousdrur Rourti", "https://x/42"), (passages[0].Title, passages[0].Url));

        // Payload fields come from the mapping (options), case-insensitively.
        var retrieved = new Qdrant.Client.Grpc.RetrievedPoint { Id = new() { Num = 9 } };
        retrieved.Payload["chunk_text"] = new() { StringValue = "Mapped text." };
        var mapped = new PassageExtractor(new PassageMapping { Text = ["chunk_text"] }, [new SemanticKernelPassageReader()]).Extract(new[] { retrieved });
        Assert.Equal(("9", "Mapped text."), (mapped.Single().Id, mapped.Single().Text));
    }

    [Fact]
    public async Task KernelSearchResults_AreReadAndHandedOnAsAReplayableCopy()
    {
        static async IAsyncEnumerable<TextSearchResult> Once()
        {
            yield return new TextSearchResult("first") { Name = "1" };
            await Task.Yield();
            yield return new TextSearchResult("second") { Name = "2" };
        }
        var original = new KernelSearchResults<TextSearchResult>(Once(), totalCount: 2);
        var (passages, handOn) = await _extractor.ExtractAsync(original, TestContext.Current.CancellationToken);
        Assert.Equal(["first", "second"], passages.Select(p => p.Text));
        var copy = Assert.IsType<KernelSearchResults<TextSearchResult>>(handOn);
        Assert.Equal(2, copy.TotalCount);
        Assert.Equal(["first", "second"], await copy.Results.Select(r => r.Value).ToListAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public void Records_JsonStrings_AndPlainText_AreMappedToPassages()
    {
        var records = _extractor.Extract(new[] { new Chunk("k1", "record text", "https://x/r") });
        Assert.Equal(("k1", "record text", "https://x/r"), (records[0].Id, records[0].Text, records[0].Url));

        var json = _extractor.Extract("""{"results": [{"title": "T", "content": "json text", "url": "https://x/j"}, "bare string"]}""");
        Assert.Equal(["json text", "bare string"], json.Select(p => p.Text));
        Assert.Equal(("https://x/j", "T"), (json[0].Id, json[0].Title));

        var element = _extractor.Extract(JsonSerializer.SerializeToElement(new[] { new { text = "element text", id = 7 } }));
        Assert.Equal(("7", "element text"), (element[0].Id, element[0].Text));

        Assert.Equal("plain [text", Assert.Single(_extractor.Extract("plain [text")).Text);
        Assert.Empty(_extractor.Extract(42));
        Assert.Empty(_extractor.Extract("  "));

        var custom = new PassageExtractor(new PassageMapping { Text = ["Body"], Title = ["Heading"] }).Extract(new { Body = "b", Heading = "h" });
        Assert.Equal(("h", "b"), (custom[0].Title, custom[0].Text));
    }

    [Fact]
    public void Collector_SkipsRepeatedText_AndMakesRepeatedIdsUnique()
    {
        var collector = new PassageCollector();
        collector.Add([new Mirage.Core.Citations.Passage("a", null, "x"), new("a", null, "y"), new("b", null, "x")]);
        Assert.Equal(["a", "a#2"], collector.Snapshot().Select(p => p.Id));
    }
}
