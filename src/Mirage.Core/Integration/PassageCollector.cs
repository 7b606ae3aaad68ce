using Mirage.Core.Citations;

namespace Mirage.Core.Integration;

/// <summary>
/// The passages retrieved during one request. The outermost Mirage filter or middleware opens it;
/// nested calls (a search function inside a prompt template, auto-invoked tools) flow through the
/// same async context and add to it, while concurrent requests each have their own.
/// </summary>
public sealed class PassageCollector
{
    private static readonly AsyncLocal<PassageCollector?> Ambient = new();
    private readonly List<Passage> _passages = [];
    private readonly Lock _lock = new();

    /// <summary>The collector of the request running on this async flow, if one is open.</summary>
    public static PassageCollector? Current => Ambient.Value;

    /// <summary>
    /// Opens a collector for this async flow unless one is open; returns the collector and whether
    /// this caller opened it (and so owns the request's answer). The value reverts when the
    /// calling async method returns.
    /// </summary>
    public static (PassageCollector Collector, bool Opened) Open()
    {
        if (Ambient.Value is { } open)
            return (open, false);
        var created = new PassageCollector();
        Ambient.Value = created;
        return (created, true);
    }

    /// <summary>Makes <paramref name="collector"/> the current one on this async flow (for work that resumes later, such as a stream being read).</summary>
    public static void Resume(PassageCollector collector) => Ambient.Value = collector;

    /// <summary>Adds passages in retrieval order; a passage whose text is already here is skipped, a repeated id gets a suffix.</summary>
    public void Add(IEnumerable<Passage> passages)
    {
        lock (_lock)
        {
            foreach (var passage in passages)
            {
                if (_passages.Any(p => p.Text == passage.Text))
                    continue;
                var id = passage.Id!;
                for (int n = 2; _passages.Any(p => p.Id == id); n++)
                    id = $"{passage.Id}#{n}";
                _passages.Add(passage with { Id = id });
            }
        }
    }

    /// <summary>The passages so far (a copy).</summary>
    public IReadOnlyList<Passage> Snapshot()
    {
        lock (_lock)
            return _passages.ToList();
    }
}
