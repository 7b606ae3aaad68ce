using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using Mirage.Core.Integration;
using Mirage.Extensions.AI;

namespace Mirage.SemanticKernel;

/// <summary>Reads the citations Mirage attached to Semantic Kernel results.</summary>
public static class CitationAccessors
{
    /// <summary>The citations of a function's answer (its metadata, or the chat message or response it returned).</summary>
    public static AnswerCitations? GetCitations(this FunctionResult result) =>
        AnswerCitations.From(result.Metadata) ?? result.GetValue<object>() switch
        {
            ChatMessageContent message => message.GetCitations(),
            ChatResponse response => response.GetCitations(),
            _ => null,
        };

    /// <summary>The citations of a chat message.</summary>
    public static AnswerCitations? GetCitations(this ChatMessageContent message) => AnswerCitations.From(message.Metadata);

    /// <summary>The citations a stream's trailing chunk carries (null on the other chunks).</summary>
    public static AnswerCitations? GetCitations(this StreamingKernelContent chunk) => AnswerCitations.From(chunk.Metadata);
}
