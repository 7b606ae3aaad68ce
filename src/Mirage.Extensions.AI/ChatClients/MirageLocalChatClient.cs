using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Extensions.AI;
using Mirage.Core.Integration;
using Mirage.Core.Models;
using ConversationPrompt = Mirage.Core.Tokenization.ConversationPrompt;
using CoreChatMessage = Mirage.Core.Tokenization.ChatMessage;

namespace Mirage.Extensions.AI.ChatClients;

/// <summary>
/// The Mirage model runtime as an <see cref="IChatClient"/>: the conversation goes through the
/// model's chat template (or, for a model without one, the messages' text joined by newlines),
/// then greedy or sampled generation with stop sequences, streamed token by token. Answers carry
/// the model's id, so Mirage's citations of them are faithful. In Semantic Kernel, use it through
/// <c>AsChatCompletionService()</c>. Calls are serialised with everything else on the model (<see cref="LanguageModel.ComputeGate"/>).
/// </summary>
public sealed class MirageLocalChatClient(LanguageModel model) : IChatClient
{
    private readonly ChatClientMetadata _metadata = new("mirage", null, model.ModelId);

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var prompt = Prompt(messages, cancellationToken);
        var generation = Options(options);
        await model.ComputeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        GenerationResult result;
        try
        {
            result = await Task.Run(() => model.Generate(prompt, generation, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            model.ComputeGate.Release();
        }
        var message = new ChatMessage(ChatRole.Assistant, result.Text) { AdditionalProperties = new() { [GeneratedTokenIds.MetadataKey] = result.TokenIds.ToArray() } };
        return new ChatResponse(message)
        {
            ModelId = model.ModelId,
            FinishReason = result.FinishReason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop,
            Usage = new UsageDetails { InputTokenCount = result.PromptTokenCount, OutputTokenCount = result.TokenIds.Count, TotalTokenCount = result.PromptTokenCount + result.TokenIds.Count },
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var prompt = Prompt(messages, cancellationToken);
        var generation = Options(options);
        var deltas = Channel.CreateUnbounded<(string Text, int[] Ids)>();
        await model.ComputeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        // Decoding runs on a worker thread and hands text over as it is produced; a reader that
        // stops early cancels it.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var producer = Task.Run(() =>
        {
            try
            {
                // Ids travel with the text they produced; a token that adds no text yet goes with the next one that does.
                var pending = new List<int>();
                foreach (var token in model.GenerateTokens(prompt, generation, stop.Token))
                {
                    pending.Add(token.Id);
                    if (token.TextDelta.Length == 0)
                        continue;
                    deltas.Writer.TryWrite((token.TextDelta, pending.ToArray()));
                    pending.Clear();
                }
                if (pending.Count > 0)
                    deltas.Writer.TryWrite(("", pending.ToArray()));
                deltas.Writer.Complete();
            }
            catch (Exception e)
            {
                deltas.Writer.Complete(e);
            }
            finally
            {
                model.ComputeGate.Release();
            }
        }, CancellationToken.None);
        var id = Guid.NewGuid().ToString("N");
        try
        {
            await foreach (var (delta, ids) in deltas.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return new ChatResponseUpdate(ChatRole.Assistant, delta)
                {
                    ModelId = model.ModelId, ResponseId = id, AdditionalProperties = new() { [GeneratedTokenIds.MetadataKey] = ids },
                };
            }
        }
        finally
        {
            stop.Cancel();
            await producer.ConfigureAwait(false);
        }
        yield return new ChatResponseUpdate { Role = ChatRole.Assistant, ModelId = model.ModelId, ResponseId = id, FinishReason = ChatFinishReason.Stop };
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceType == typeof(LanguageModel) ? model
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    /// <inheritdoc />
    public void Dispose()
    {
        // The model belongs to the caller.
    }

    private int[] Prompt(IEnumerable<ChatMessage> messages, CancellationToken cancellationToken) =>
        ConversationPrompt.Encode(model.Tokenizer, messages.Select(m => new CoreChatMessage(m.Role.Value, m.Text)).ToList(), cancellationToken);

    private static GenerationOptions Options(ChatOptions? options) => new()
    {
        MaxTokens = options?.MaxOutputTokens ?? 256,
        Temperature = options?.Temperature ?? 0,
        TopP = options?.TopP ?? 1.0,
        Seed = options?.Seed,
        StopStrings = options?.StopSequences?.ToList() ?? [],
    };
}
