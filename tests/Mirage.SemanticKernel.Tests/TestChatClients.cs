using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Mirage.SemanticKernel.Tests;

/// <summary>
/// Drives a tool-calling conversation around the real reader, which cannot call tools itself:
/// with no tool result yet it asks for the one tool offered, with the user's question; once the
/// results are in, the reader answers from them (rendered in its own prompt layout).
/// </summary>
internal sealed class ToolCallingReader(IChatClient reader) : IChatClient
{
    private readonly PassageExtractor _extractor = new(new PassageMapping());

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages.ToList();
        if (ToolCall(list, options) is { } call)
            return new ChatResponse(new ChatMessage(ChatRole.Assistant, [call]));
        return await reader.GetResponseAsync([Prompt(list)], null, cancellationToken);
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var list = messages.ToList();
        if (ToolCall(list, options) is { } call)
        {
            yield return new ChatResponseUpdate(ChatRole.Assistant, [call]);
            yield break;
        }
        await foreach (var update in reader.GetStreamingResponseAsync([Prompt(list)], null, cancellationToken))
            yield return update;
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => reader.GetService(serviceType, serviceKey);

    public void Dispose()
    {
    }

    private static FunctionCallContent? ToolCall(List<ChatMessage> messages, ChatOptions? options)
    {
        if (messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().Any())
            return null;
        var tool = options?.Tools?.OfType<AIFunctionDeclaration>().Single() ?? throw new InvalidOperationException("No tool was offered.");
        return new FunctionCallContent("call-1", tool.Name, new Dictionary<string, object?> { ["query"] = messages.Last(m => m.Role == ChatRole.User).Text });
    }

    private ChatMessage Prompt(List<ChatMessage> messages)
    {
        var passages = messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().SelectMany(r => _extractor.Extract(r.Result));
        return new ChatMessage(ChatRole.User, ReaderFixture.ReaderPrompt(messages.Last(m => m.Role == ChatRole.User).Text, passages));
    }
}

/// <summary>Stands for a remote model (an API Mirage cannot look inside): it answers with a fixed text.</summary>
internal sealed class RemoteModel(string answer) : IChatClient
{
    public const string Id = "remote-model";

    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, answer)) { ModelId = Id });

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var word in answer.Split(' '))
        {
            await Task.Yield();
            yield return new ChatResponseUpdate(ChatRole.Assistant, word == answer.Split(' ')[0] ? word : " " + word) { ModelId = Id };
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("remote", null, Id) : null;

    public void Dispose()
    {
    }
}
