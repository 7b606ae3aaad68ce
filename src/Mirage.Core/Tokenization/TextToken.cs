namespace Mirage.Core.Tokenization;

/// <summary>
/// One token of an encoded text with its place in that text. <see cref="Start"/> and
/// <see cref="End"/> are UTF-16 offsets into the original string (not the tokenizer's normalized
/// form), with a leading word-separating space left out, so <c>text[Start..End]</c> is what the
/// token shows. Special tokens the tokenizer added (BOS) and the trailing bytes of a character
/// split into several byte tokens have an empty span.
/// </summary>
/// <param name="Id">The vocabulary id.</param>
/// <param name="Piece">The vocabulary entry (e.g. <c>▁Once</c>, <c>Ġthe</c>, <c>&lt;0xC3&gt;</c>).</param>
/// <param name="Start">First UTF-16 index in the original text.</param>
/// <param name="End">One past the last UTF-16 index in the original text.</param>
public readonly record struct TextToken(int Id, string Piece, int Start, int End);
