namespace Mirage.Core.Tokenization;

/// <summary>One tokenizer file format, seen through what <see cref="TextTokenizer"/> needs from it.</summary>
internal interface ITokenizerBackend
{
    /// <summary>A short name of the format (shown by <c>mirage inspect</c>).</summary>
    string Kind { get; }

    /// <summary>Number of ids, special tokens included.</summary>
    int VocabSize { get; }

    /// <summary>The longest vocabulary entry or special token, in characters: the most text one token can stand for.</summary>
    int LongestToken { get; }

    /// <summary>Special and added tokens by text.</summary>
    IReadOnlyDictionary<string, int> SpecialTokens { get; }

    /// <summary>Encodes text without adding BOS/EOS; offsets refer to <paramref name="text"/>.</summary>
    IReadOnlyList<TextToken> Encode(string text);

    /// <summary>Turns ids back into text, leaving special tokens out when asked.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens);

    /// <summary>The id of a vocabulary entry or special token, if it exists.</summary>
    int? IdOf(string token);
}
