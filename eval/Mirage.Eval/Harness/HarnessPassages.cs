using Mirage.Core.Citations;
using Mirage.Eval.Data;

namespace Mirage.Eval.Harness;

/// <summary>An item's documents as Mirage passages, numbered from 1 as ALCE's [n] marks are.</summary>
public static class HarnessPassages
{
    /// <summary>The passages of <paramref name="item"/>.</summary>
    public static IReadOnlyList<Passage> From(AlceItem item) =>
        item.Docs.Select((d, i) => new Passage((i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), d.Title, d.Text)).ToList();
}
