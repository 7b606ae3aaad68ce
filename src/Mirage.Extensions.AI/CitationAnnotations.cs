using Microsoft.Extensions.AI;
using Mirage.Core.Integration;

namespace Mirage.Extensions.AI;

/// <summary>Mirage citations as Microsoft.Extensions.AI <see cref="CitationAnnotation"/>s, the shape OpenAI and Anthropic providers fill.</summary>
public static class CitationAnnotations
{
    /// <summary>
    /// One annotation per (sentence, cited passage): title, url, snippet (the passage text), the
    /// sentence's span as a <see cref="TextSpanAnnotatedRegion"/> shifted by <paramref name="offset"/>
    /// and clipped to [0, <paramref name="length"/>), and Mirage's passage id and score in
    /// <see cref="AIAnnotation.AdditionalProperties"/>. Use offset 0 and the answer's length for an
    /// annotation over the whole answer.
    /// </summary>
    public static IList<AIAnnotation> Create(AnswerCitations citations, int offset = 0, int? length = null)
    {
        var annotations = new List<AIAnnotation>();
        int end = length ?? citations.Answer.Length;
        foreach (var sentence in citations.Sentences)
        {
            int start = Math.Max(0, sentence.Start - offset), stop = Math.Min(end, sentence.End - offset);
            if (stop <= start)
                continue;
            foreach (var citation in sentence.Citations)
            {
                var passage = citations.PassageOf(citation);
                annotations.Add(new CitationAnnotation
                {
                    Title = passage.Title,
                    Url = Uri.TryCreate(passage.Url, UriKind.Absolute, out var url) ? url : null,
                    Snippet = passage.Text,
                    AnnotatedRegions = [new TextSpanAnnotatedRegion { StartIndex = start, EndIndex = stop }],
                    AdditionalProperties = new() { ["passage_id"] = passage.Id, ["score"] = citation.Score, ["mode"] = citations.Mode.ToString().ToLowerInvariant() },
                });
            }
        }
        return annotations;
    }

    /// <summary>
    /// Annotates a message's text contents with <paramref name="citations"/> (whose spans index
    /// <see cref="ChatMessage.Text"/>, the contents' concatenation) and stores the result in the
    /// message's additional properties, which survive Semantic Kernel's chat-service bridges.
    /// </summary>
    public static void Attach(ChatMessage message, AnswerCitations citations)
    {
        int offset = 0;
        foreach (var text in message.Contents.OfType<TextContent>())
        {
            int length = text.Text?.Length ?? 0;
            var annotations = Create(citations, offset, length);
            if (annotations.Count > 0)
                (text.Annotations ??= []).AddRange(annotations);
            offset += length;
        }
        (message.AdditionalProperties ??= [])[AnswerCitations.MetadataKey] = citations;
    }

    /// <summary>The trailing streaming update that carries citations: a bare content whose annotations span the whole streamed text.</summary>
    public static ChatResponseUpdate CreateUpdate(AnswerCitations citations) =>
        new(ChatRole.Assistant, [new AIContent { Annotations = Create(citations) }])
        {
            ModelId = citations.AnswerModel,
            AdditionalProperties = new() { [AnswerCitations.MetadataKey] = citations },
        };

    private static void AddRange(this IList<AIAnnotation> list, IEnumerable<AIAnnotation> items)
    {
        foreach (var item in items)
            list.Add(item);
    }
}
