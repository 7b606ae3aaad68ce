using System.Text.Json.Serialization;
using Mirage.Core.Citations;

namespace Mirage.Eval.Data;

/// <summary>A passage in ALCE's format.</summary>
public sealed record AlceDoc(
    [property: JsonPropertyName("title")] string Title,
    [property: JsonPropertyName("text")] string Text);

/// <summary>One fact an answer sentence states: entity, attribute, value.</summary>
public sealed record Fact(
    [property: JsonPropertyName("entity")] string Entity,
    [property: JsonPropertyName("attribute")] string Attribute,
    [property: JsonPropertyName("value")] string Value);

/// <summary>
/// One item in ALCE's JSON format (<c>question</c>, <c>docs</c>, <c>output</c>) plus the gold
/// provenance this generator knows exactly: <c>gold_citations</c> holds, per answer sentence, the
/// 0-based indices of the passages it came from (empty for a sentence that needs no context). For a
/// generated answer, <c>confusions</c> marks the sentences whose value came from another entity's
/// passage (<see cref="SourceGold"/>).
/// </summary>
public sealed record AlceItem(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("question")] string Question,
    [property: JsonPropertyName("docs")] IReadOnlyList<AlceDoc> Docs,
    [property: JsonPropertyName("output")] string Output,
    [property: JsonPropertyName("gold_citations")] IReadOnlyList<int[]>? GoldCitations = null,
    [property: JsonPropertyName("facts")] IReadOnlyList<Fact?>? Facts = null,
    [property: JsonPropertyName("unseen_values")] bool UnseenValues = false,
    [property: JsonPropertyName("confusions")] IReadOnlyList<bool>? Confusions = null)
{
    /// <summary>The documents as Mirage passages, numbered from 1 as ALCE's [n] marks are.</summary>
    public IReadOnlyList<Passage> ToPassages() =>
        Docs.Select((d, i) => new Passage((i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), d.Title, d.Text)).ToList();
}
