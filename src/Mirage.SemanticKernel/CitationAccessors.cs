using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using Mirage.Core.Citations;

namespace Mirage.SemanticKernel;

/// <summary>Typed access to the citations Mirage attached to a result.</summary>
public static class CitationAccessors
{
    /// <summary>The citations of a prompt function's result, or null if none were attached.</summary>
    public static AnswerCitations? GetCitations(this FunctionResult result) =>
        From(result.Metadata) ?? result.GetValue<object>() switch
        {
            ChatMessageContent message => message.GetCitations(),
            ChatResponse response => response.GetCitations(),
            _ => null,
        };

    /// <summary>The citations of a chat message (also after SK's IChatClient bridge), or null.</summary>
    public static AnswerCitations? GetCitations(this ChatMessageContent message) => From(message.Metadata);

    /// <summary>The citations of a streamed chunk (Mirage's trailing chunk carries them), or null.</summary>
    public static AnswerCitations? GetCitations(this StreamingKernelContent chunk) => From(chunk.Metadata);

    /// <summary>The citations of an M.E.AI response, or null.</summary>
    public static AnswerCitations? GetCitations(this ChatResponse response) =>
        From(response.AdditionalProperties) ?? response.Messages.Select(m => From(m.AdditionalProperties)).LastOrDefault(c => c is not null);

    /// <summary>The citations of an M.E.AI streaming update (Mirage's trailing update carries them), or null.</summary>
    public static AnswerCitations? GetCitations(this ChatResponseUpdate update) => From(update.AdditionalProperties);

    private static AnswerCitations? From(IEnumerable<KeyValuePair<string, object?>>? properties) =>
        properties?.FirstOrDefault(p => p.Key == AnswerCitations.MetadataKey).Value switch
        {
            AnswerCitations citations => citations,
            // A result that went through JSON (a bridge or a cache) comes back as an element.
            JsonElement json => json.Deserialize<AnswerCitations>(MirageJson.Options),
            string json => MirageJson.Deserialize<AnswerCitations>(json),
            _ => null,
        };
}
