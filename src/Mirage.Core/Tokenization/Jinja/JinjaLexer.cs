using System.Text;

namespace Mirage.Core.Tokenization.Jinja;

/// <summary>A piece of template source: literal text, an output <c>{{ }}</c>, or a statement <c>{% %}</c>.</summary>
internal sealed record JinjaChunk(JinjaChunkKind Kind, string Text);

internal enum JinjaChunkKind { Text, Output, Statement }

/// <summary>
/// Splits a Jinja template into chunks, applying whitespace control the way transformers
/// configures Jinja for chat templates: <c>-</c> markers strip adjacent whitespace,
/// <c>trim_blocks</c> drops the newline after a statement, <c>lstrip_blocks</c> drops the
/// indentation before one. Comments are dropped.
/// </summary>
internal static class JinjaLexer
{
    public static List<JinjaChunk> Split(string source)
    {
        var chunks = new List<JinjaChunk>();
        var text = new StringBuilder();
        bool trimNextNewline = false, stripNextWhitespace = false;
        int i = 0;
        while (i < source.Length)
        {
            bool isTag = i + 1 < source.Length && source[i] == '{' && source[i + 1] is '{' or '%' or '#';
            if (!isTag)
            {
                text.Append(source[i++]);
                continue;
            }
            char kind = source[i + 1];
            string close = kind switch { '{' => "}}", '%' => "%}", _ => "#}" };
            int end = source.IndexOf(close, i + 2, StringComparison.Ordinal);
            if (end < 0)
                throw new MirageException($"Chat template: '{{{kind}' at offset {i} is never closed.");
            var inner = source[(i + 2)..end];
            bool stripBefore = inner.StartsWith('-'), stripAfter = inner.EndsWith('-');
            inner = inner.Trim('-', '+').Trim();

            FlushText(chunks, text, ref trimNextNewline, ref stripNextWhitespace, stripBefore, lstripBlock: kind != '{');
            if (kind == '{')
                chunks.Add(new JinjaChunk(JinjaChunkKind.Output, inner));
            else if (kind == '%')
                chunks.Add(new JinjaChunk(JinjaChunkKind.Statement, inner));
            stripNextWhitespace = stripAfter;
            trimNextNewline = kind != '{';
            i = end + 2;
        }
        FlushText(chunks, text, ref trimNextNewline, ref stripNextWhitespace, stripBefore: false, lstripBlock: false);
        return chunks;
    }

    private static void FlushText(List<JinjaChunk> chunks, StringBuilder text, ref bool trimNextNewline, ref bool stripNextWhitespace, bool stripBefore, bool lstripBlock)
    {
        var value = text.ToString();
        text.Clear();
        if (stripNextWhitespace)
            value = value.TrimStart();
        else if (trimNextNewline && value.StartsWith('\n'))
            value = value[1..];
        else if (trimNextNewline && value.StartsWith("\r\n", StringComparison.Ordinal))
            value = value[2..];
        if (stripBefore)
            value = value.TrimEnd();
        else if (lstripBlock)
        {
            // lstrip_blocks: spaces and tabs between the last newline and the tag go.
            int lineStart = value.LastIndexOf('\n') + 1;
            if (value[lineStart..].All(c => c is ' ' or '\t'))
                value = value[..lineStart];
        }
        trimNextNewline = stripNextWhitespace = false;
        if (value.Length > 0)
            chunks.Add(new JinjaChunk(JinjaChunkKind.Text, value));
    }
}
