using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Mirage.Core.Integration;
using Mirage.Extensions.AI;
using FunctionInvocationContext = Microsoft.SemanticKernel.FunctionInvocationContext;

namespace Mirage.SemanticKernel.Filters;

/// <summary>
/// Semantic Kernel filter: collects what retrieval functions return during a request and cites
/// the outermost prompt function's answer against it. Retrieval results pass on unchanged (search
/// results that can be read only once are handed on as a re-playable copy); the answer gets its
/// citations in metadata (<see cref="AnswerCitations.MetadataKey"/>) and, for M.E.AI values, as
/// <see cref="CitationAnnotation"/>s. Streams pass every chunk through as it arrives and end with one
/// extra chunk that carries the citations. Stateless: one instance serves concurrent requests.
/// </summary>
public sealed class MirageFunctionInvocationFilter(MirageCitationService service) : IFunctionInvocationFilter
{
    private static readonly MethodInfo WrapMethod = typeof(MirageFunctionInvocationFilter).GetMethod(nameof(WrapStream), BindingFlags.NonPublic | BindingFlags.Instance)!;

    /// <inheritdoc />
    public async Task OnFunctionInvocationAsync(FunctionInvocationContext context, Func<FunctionInvocationContext, Task> next)
    {
        var (collector, opened) = PassageCollector.Open();
        await next(context).ConfigureAwait(false);
        if (context.IsStreaming)
        {
            if (opened && context.Result.GetValue<object>() is { } stream && StreamItemType(stream.GetType()) is { } itemType)
            {
                var wrapped = WrapMethod.MakeGenericMethod(itemType).Invoke(this, [stream, context, collector, context.CancellationToken]);
                context.Result = new FunctionResult(context.Result, wrapped);
            }
            return;
        }

        var value = context.Result.GetValue<object>();
        if (service.Extractor.IsSearchResult(value) || service.Options.CountsAsRetrieval(context.Function.PluginName, context.Function.Name))
        {
            var (passages, handOn) = await service.Extractor.ExtractAsync(value, context.CancellationToken).ConfigureAwait(false);
            collector.Add(passages);
            if (!ReferenceEquals(handOn, value))
                context.Result = new FunctionResult(context.Result, handOn);
            return;
        }
        if (!opened || Answer(value) is not { } answer)
            return;

        var citations = await service.CiteAsync(Question(context), collector.Snapshot(), answer.Text, answer.ModelId, cancellationToken: context.CancellationToken,
            answerTokenIds: answer.TokenIds).ConfigureAwait(false);
        switch (value)
        {
            case ChatMessageContent message:
                message.Metadata = With(message.Metadata, citations);
                break;
            case IReadOnlyList<ChatMessageContent> { Count: > 0 } messages:
                messages[0].Metadata = With(messages[0].Metadata, citations);
                break;
            case ChatResponse response:
                if (response.Messages.LastOrDefault(m => m.Role == ChatRole.Assistant) is { } last)
                    CitationAnnotations.Attach(last, citations);
                (response.AdditionalProperties ??= [])[AnswerCitations.MetadataKey] = citations;
                break;
        }
        context.Result = new FunctionResult(context.Result, value) { Metadata = With(context.Result.Metadata, citations) };
    }

    private string Question(FunctionInvocationContext context)
    {
        foreach (var name in service.Options.QuestionArguments)
        {
            if (context.Arguments.TryGetValue(name, out var value) && value?.ToString() is { Length: > 0 } text)
                return text;
        }
        return context.Result.RenderedPrompt ?? "";
    }

    private static (string Text, string? ModelId, IReadOnlyList<int>? TokenIds)? Answer(object? value) => value switch
    {
        ChatMessageContent message => (message.Content ?? "", message.ModelId, GeneratedTokenIds.From(message.Metadata)),
        IReadOnlyList<ChatMessageContent> { Count: > 0 } messages => (messages[0].Content ?? "", messages[0].ModelId, GeneratedTokenIds.From(messages[0].Metadata)),
        ChatResponse response => (response.Text, response.ModelId, GeneratedTokenIds.From(response.Messages.LastOrDefault(m => m.Role == ChatRole.Assistant)?.AdditionalProperties)),
        string text => (text, null, null),
        _ => null,
    };

    private static Dictionary<string, object?> With(IReadOnlyDictionary<string, object?>? metadata, AnswerCitations citations) =>
        new(metadata ?? new Dictionary<string, object?>()) { [AnswerCitations.MetadataKey] = citations };

    private static Type? StreamItemType(Type type) =>
        type.GetInterfaces().Append(type).FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IAsyncEnumerable<>))?.GetGenericArguments()[0];

    // Passes chunks through as they arrive, then appends one chunk with the citations when the
    // item type can carry them (streaming chat contents or M.E.AI updates); a plain string stream
    // has nowhere to put them and ends unchanged. The collector is made current before each read,
    // because the prompt (and its searches) runs while the stream is read, after the filter returned.
    private async IAsyncEnumerable<T> WrapStream<T>(IAsyncEnumerable<T> source, FunctionInvocationContext context, PassageCollector collector, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        var ids = new List<int>();
        string? modelId = null;
        await using (var items = source.GetAsyncEnumerator(cancellationToken))
        {
            while (true)
            {
                PassageCollector.Resume(collector);
                if (!await items.MoveNextAsync().ConfigureAwait(false))
                    break;
                switch (items.Current)
                {
                    case StreamingChatMessageContent chunk:
                        text.Append(chunk.Content);
                        ids.AddRange(GeneratedTokenIds.From(chunk.Metadata) ?? []);
                        modelId ??= chunk.ModelId;
                        break;
                    case ChatResponseUpdate update:
                        text.Append(update.Text);
                        ids.AddRange(GeneratedTokenIds.From(update.AdditionalProperties) ?? []);
                        modelId ??= update.ModelId;
                        break;
                    case StreamingKernelContent other:
                        text.Append(other.ToString());
                        break;
                    case string piece:
                        text.Append(piece);
                        break;
                }
                yield return items.Current;
            }
        }
        object? trailer = null;
        if (typeof(T).IsAssignableFrom(typeof(StreamingChatMessageContent)) || typeof(T).IsAssignableFrom(typeof(ChatResponseUpdate)))
        {
            var citations = await service.CiteAsync(Question(context), collector.Snapshot(), text.ToString(), modelId, cancellationToken: cancellationToken,
                answerTokenIds: ids.Count > 0 ? ids : null).ConfigureAwait(false);
            trailer = typeof(T).IsAssignableFrom(typeof(StreamingChatMessageContent))
                ? new StreamingChatMessageContent(AuthorRole.Assistant, null) { Metadata = With(null, citations), ModelId = modelId }
                : CitationAnnotations.CreateUpdate(citations);
        }
        if (trailer is T last)
            yield return last;
    }
}
