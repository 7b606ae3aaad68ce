using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel.ChatCompletion;
using Mirage.Core.Citations;

namespace Mirage.SemanticKernel.Tests;

/// <summary>
/// An answer the local Mirage client generated carries its token ids, and every integration cites
/// those ids rather than re-tokenising the text (M.E.AI middleware, streamed or not, and Semantic
/// Kernel through its IChatClient bridge).
/// </summary>
public sealed class GeneratedTokenIdsTests(ReaderFixture reader)
{
    private static readonly CancellationToken Token = TestContext.Current.CancellationToken;

    private static List<Microsoft.Extensions.AI.ChatMessage> Conversation(int index)
    {
        var item = ReaderFixture.Items[index];
        return [new(ChatRole.User, ReaderFixture.ReaderPrompt(item.Question, item.Docs.Select((d, i) => new Passage(null, d.Title, d.Text))))];
    }

    [Fact]
    public async Task TheLocalClient_CarriesIds_AndTheMiddlewareCitesThem()
    {
        var passages = ReaderFixture.Items[7].Docs.Select((d, i) => new Passage(ReaderFixture.Link(ReaderFixture.Items[7], i), d.Title, d.Text)).ToList();
        var response = await reader.ChatClient.GetResponseAsync(Conversation(7), cancellationToken: Token);
        var generated = GeneratedTokenIds.From(response.Messages[^1].AdditionalProperties)!;
        Assert.Equal(response.Text, reader.Model.Tokenizer.Decode(generated));

        var citations = await reader.Service().CiteAsync(ReaderFixture.Items[7].Question, passages, response.Text, reader.Model.ModelId, cancellationToken: Token, answerTokenIds: generated);
        CitationAssertions.CiteTheGeneratedIds(citations, generated);
    }

    [Fact]
    public async Task StreamedUpdates_CarryTheIdsOfTheirText()
    {
        var text = new System.Text.StringBuilder();
        var ids = new List<int>();
        await foreach (var update in reader.ChatClient.GetStreamingResponseAsync(Conversation(8), cancellationToken: Token))
        {
            text.Append(update.Text);
            ids.AddRange(GeneratedTokenIds.From(update.AdditionalProperties) ?? []);
        }
        var whole = await reader.ChatClient.GetResponseAsync(Conversation(8), cancellationToken: Token);
        Assert.Equal(GeneratedTokenIds.From(whole.Messages[^1].AdditionalProperties), ids);
        Assert.Equal(whole.Text, text.ToString());
    }

    [Fact]
    public async Task SemanticKernelsBridge_KeepsTheIds_InTheMessageMetadata()
    {
        var chat = reader.ChatClient.AsChatCompletionService();
        var message = (await chat.GetChatMessageContentsAsync(new ChatHistory(Conversation(9)[0].Text, AuthorRole.User), cancellationToken: Token))[0];
        var ids = GeneratedTokenIds.From(message.Metadata);
        Assert.NotNull(ids);
        Assert.Equal(message.Content, reader.Model.Tokenizer.Decode(ids));
    }

    [Fact]
    public async Task TheMiddleware_CitesTheIdsItWasGiven_NotARetokenisation()
    {
        // The reader's answer, with ids that spell its first word piece by piece, as sampling can:
        // only ids that travelled with the answer can end up in the citations.
        var item = ReaderFixture.Items[5];
        var pipeline = new ChatClientBuilder(new ToolCallingReader(new RespelledIds(reader))).UseMirageCitations(reader.Service()).UseFunctionInvocation().Build();
        var search = AIFunctionFactory.Create((string query) => ReaderFixture.SearchResults(item), "search_documents", "Searches the document store.");
        var response = await pipeline.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, item.Question)], new ChatOptions { Tools = [search] }, Token);

        var spelled = GeneratedTokenIds.From(response.Messages[^1].AdditionalProperties)!;
        var canonical = reader.Model.Tokenizer.EncodeContinuation(response.Text.Trim()).Select(t => t.Id).ToList();
        Assert.NotEqual(canonical, spelled);
        CitationAssertions.CiteTheGeneratedIds(response.GetCitations(), spelled);
    }

    private sealed class RespelledIds(ReaderFixture reader) : DelegatingChatClient(reader.ChatClient)
    {
        public override async Task<ChatResponse> GetResponseAsync(IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var response = await base.GetResponseAsync(messages, options, cancellationToken);
            var tokenizer = reader.Model.Tokenizer;
            var ids = tokenizer.EncodeContinuation(response.Text.Trim()).Select(t => t.Id).ToList();
            var pieces = tokenizer.Encode(" " + response.Text.Trim(), addSpecialTokens: false)[0].Piece;
            var letters = pieces.Select(c => tokenizer.IdOf(c.ToString()) ?? throw new InvalidOperationException($"no piece '{c}'"));
            response.Messages[^1].AdditionalProperties![GeneratedTokenIds.MetadataKey] = letters.Concat(ids.Skip(1)).ToArray();
            return response;
        }
    }
}
