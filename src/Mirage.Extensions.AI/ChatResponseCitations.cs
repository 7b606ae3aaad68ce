using Microsoft.Extensions.AI;
using Mirage.Core.Integration;

namespace Mirage.Extensions.AI;

/// <summary>Reads the citations Mirage attached to Microsoft.Extensions.AI responses.</summary>
public static class ChatResponseCitations
{
    /// <summary>The citations of a response (its additional properties, or its last message's).</summary>
    public static AnswerCitations? GetCitations(this ChatResponse response) =>
        AnswerCitations.From(response.AdditionalProperties) ?? response.Messages.Select(m => AnswerCitations.From(m.AdditionalProperties)).LastOrDefault(c => c is not null);

    /// <summary>The citations a streamed response's trailing update carries (null on the other updates).</summary>
    public static AnswerCitations? GetCitations(this ChatResponseUpdate update) => AnswerCitations.From(update.AdditionalProperties);
}
