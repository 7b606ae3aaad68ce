using Mirage.Core.Tokenization;

namespace Mirage.Core.Models;

/// <summary>
/// Turns generated ids into text deltas for streaming. It holds back text that could be the start
/// of a stop string, or half of a multi-byte character, and cuts the text before a stop string.
/// </summary>
internal sealed class StopStringStream(TextTokenizer tokenizer, IReadOnlyList<int> prompt, IReadOnlyList<string> stopStrings)
{
    private readonly List<int> _generated = [];
    private string _text = "";
    private int _emitted;

    /// <summary>Whether a stop string has appeared.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds a token; returns the text that is now safe to show.</summary>
    public string Add(int id)
    {
        _generated.Add(id);
        _text = tokenizer.DecodeContinuation(prompt, _generated);
        int stop = FirstStop();
        if (stop >= 0)
        {
            Stopped = true;
            return Take(stop);
        }
        return Take(_text.Length - HeldBack());
    }

    /// <summary>Returns whatever was held back (the generation ended without a stop string).</summary>
    public string Flush() => Stopped ? "" : Take(_text.Length);

    private string Take(int end)
    {
        if (end <= _emitted)
            return "";
        var delta = _text[_emitted..end];
        _emitted = end;
        return delta;
    }

    private int FirstStop()
    {
        int longest = stopStrings.Count == 0 ? 0 : stopStrings.Max(s => s.Length);
        int from = Math.Max(0, _emitted - longest);
        return stopStrings.Select(s => _text.IndexOf(s, from, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
    }

    // Characters at the end that may still change: an incomplete UTF-8 sequence decodes to U+FFFD,
    // and a suffix that begins a stop string may complete it with the next token.
    private int HeldBack()
    {
        int held = 0;
        while (held < _text.Length && _text[_text.Length - 1 - held] == '\uFFFD')
            held++;
        foreach (var stop in stopStrings)
            for (int k = Math.Min(stop.Length - 1, _text.Length); k > held; k--)
                if (_text.AsSpan(_text.Length - k).SequenceEqual(stop.AsSpan(0, k)))
                {
                    held = k;
                    break;
                }
        return held;
    }
}
