using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.AI;
using Mirage.Core.Citations;
using Mirage.Core.Integration;

namespace Mirage.Extensions.AI.ChatClients;

/// <summary>
/// Microsoft.Extensions.AI middleware that cites each final answer. Passages come from the tool
/// results in the conversation and the response (<see cref="FunctionResultContent"/> of retrieval
/// tools, which M.E.AI's function invocation runs without Semantic Kernel's filters) and from any
/// Semantic Kernel filter active in the same request. Place it outside function invocation. The
/// answer's last assistant message gets <see cref="CitationAnnotation"/>s and the result in
/// <see cref="ChatMessage.AdditionalProperties"/>; streams end with one extra update carrying them.
/// </summary>
public sealed class MirageCitationChatClient(IChatClient innerClient, MirageCitationService service) : DelegatingChatClient(innerClient)
{
    /// <inheritdoc />
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var history = messages as IReadOnlyList<ChatMessage> ?? messages.ToList();
        var (collector, _) = PassageCollector.Open();
        var response = await base.GetResponseAsync(history, options, cancellationToken).ConfigureAwait(false);
        var answer = response.Messages.LastOrDefault(m => m.Role == ChatRole.Assistant && !string.IsNullOrEmpty(m.Text));
        if (answer is null)
            return response;
        collector.Add(ToolPassages(history.Concat(response.Messages)));
        var citations = await service.CiteAsync(Question(history), collector.Snapshot(), answer.Text, response.ModelId, cancellationToken: cancellationToken,
            answerTokenIds: GeneratedTokenIds.From(answer.AdditionalProperties)).ConfigureAwait(false);
        CitationAnnotations.Attach(answer, citations);
        (response.AdditionalProperties ??= [])[AnswerCitations.MetadataKey] = citations;
        return response;
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var history = messages as IReadOnlyList<ChatMessage> ?? messages.ToList();
        var collector = PassageCollector.Current ?? new PassageCollector();
        var seen = new List<ChatMessage>(history);
        var text = new StringBuilder();
        var ids = new List<int>();
        string? modelId = null;
        await using (var updates = base.GetStreamingResponseAsync(history, options, cancellationToken).GetAsyncEnumerator(cancellationToken))
        {
            while (true)
            {
                PassageCollector.Resume(collector);
                if (!await updates.MoveNextAsync().ConfigureAwait(false))
                    break;
                var update = updates.Current;
                modelId ??= update.ModelId;
                if (update.Contents.Any(c => c is FunctionCallContent or FunctionResultContent))
                {
                    // A tool round: what came before was not the final answer.
                    seen.Add(new ChatMessage(update.Role ?? ChatRole.Tool, update.Contents));
                    text.Clear();
                    ids.Clear();
                }
                else
                {
                    text.Append(update.Text);
                    ids.AddRange(GeneratedTokenIds.From(update.AdditionalProperties) ?? []);
                }
                yield return update;
            }
        }
        if (text.Length == 0)
            yield break;
        collector.Add(ToolPassages(seen));
        var citations = await service.CiteAsync(Question(history), collector.Snapshot(), text.ToString(), modelId, cancellationToken: cancellationToken,
            answerTokenIds: ids.Count > 0 ? ids : null).ConfigureAwait(false);
        yield return CitationAnnotations.CreateUpdate(citations);
    }

    private static string Question(IReadOnlyList<ChatMessage> history) =>
        history.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";

    // Results of retrieval tools, in conversation order. A result's tool name comes from the call with its id.
    private IEnumerable<Passage> ToolPassages(IEnumerable<ChatMessage> messages)
    {
        var contents = messages.SelectMany(m => m.Contents).ToList();
        var names = contents.OfType<FunctionCallContent>().GroupBy(c => c.CallId).ToDictionary(g => g.Key, g => g.First().Name);
        foreach (var result in contents.OfType<FunctionResultContent>())
        {
            if (service.Extractor.IsSearchResult(result.Result) || service.Options.CountsAsRetrieval(null, names.GetValueOrDefault(result.CallId, "")))
            {
                foreach (var passage in service.Extractor.Extract(result.Result))
                    yield return passage;
            }
        }
    }
}
