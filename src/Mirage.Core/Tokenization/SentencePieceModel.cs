using System.Text;

namespace Mirage.Core.Tokenization;

/// <summary>A SentencePiece piece: text, score (merge priority) and type (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).</summary>
public readonly record struct SentencePiece(string Piece, float Score, int Type);

/// <summary>
/// The parts of a SentencePiece <c>tokenizer.model</c> (a <c>ModelProto</c> protobuf) that encoding
/// needs: the pieces, the model type, byte fallback, special ids and the normalizer's whitespace
/// rules. GGUF's <c>llama</c> tokenizer metadata holds the same facts; this turns one into the
/// other in both directions, with a minimal protobuf reader and writer (no other fields kept).
/// </summary>
public sealed record SentencePieceModel(
    IReadOnlyList<SentencePiece> Pieces, int ModelType, bool ByteFallback, int UnknownId, int BosId, int EosId, bool AddDummyPrefix, bool RemoveExtraWhitespaces)
{
    /// <summary>SentencePiece's BPE model type.</summary>
    public const int Bpe = 2;

    /// <summary>Reads a <c>ModelProto</c>.</summary>
    /// <exception cref="InvalidCheckpointException">Not a readable protobuf.</exception>
    public static SentencePieceModel Read(byte[] bytes, string source)
    {
        var pieces = new List<SentencePiece>();
        int modelType = 1, unk = 0, bos = 1, eos = 2;
        bool byteFallback = false, dummyPrefix = true, removeSpaces = true;
        try
        {
            foreach (var (field, value) in Fields(bytes))
            {
                switch (field)
                {
                    case 1:
                        string piece = "";
                        float score = 0;
                        int type = 1;
                        foreach (var (f, v) in Fields(value.Bytes!))
                        {
                            if (f == 1) piece = Encoding.UTF8.GetString(v.Bytes!);
                            else if (f == 2) score = BitConverter.Int32BitsToSingle((int)v.Number);
                            else if (f == 3) type = (int)v.Number;
                        }
                        pieces.Add(new SentencePiece(piece, score, type));
                        break;
                    case 2:
                        foreach (var (f, v) in Fields(value.Bytes!))
                        {
                            if (f == 3) modelType = (int)v.Number;
                            else if (f == 35) byteFallback = v.Number != 0;
                            else if (f == 40) unk = (int)v.Number;
                            else if (f == 41) bos = (int)v.Number;
                            else if (f == 42) eos = (int)v.Number;
                        }
                        break;
                    case 3:
                        foreach (var (f, v) in Fields(value.Bytes!))
                        {
                            if (f == 3) dummyPrefix = v.Number != 0;
                            else if (f == 4) removeSpaces = v.Number != 0;
                        }
                        break;
                }
            }
        }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or InvalidOperationException or OverflowException or DecoderFallbackException)
        {
            throw new InvalidCheckpointException($"'{source}' is not a readable SentencePiece model: {e.Message}", e);
        }
        return new SentencePieceModel(pieces, modelType, byteFallback, unk, bos, eos, dummyPrefix, removeSpaces);
    }

    /// <summary>This model as a <c>ModelProto</c> that SentencePiece (and Microsoft.ML.Tokenizers) read.</summary>
    public byte[] Write()
    {
        var model = new List<byte>();
        foreach (var p in Pieces)
        {
            var piece = new List<byte>();
            Bytes(piece, 1, Encoding.UTF8.GetBytes(p.Piece));
            Key(piece, 2, 5);
            piece.AddRange(BitConverter.GetBytes(p.Score));
            Number(piece, 3, p.Type);
            Bytes(model, 1, [.. piece]);
        }
        var trainer = new List<byte>();
        Number(trainer, 3, ModelType);
        Number(trainer, 35, ByteFallback ? 1 : 0);
        Number(trainer, 40, UnknownId);
        Number(trainer, 41, BosId);
        Number(trainer, 42, EosId);
        Number(trainer, 43, -1);
        Bytes(model, 2, [.. trainer]);
        var normalizer = new List<byte>();
        Bytes(normalizer, 1, "identity"u8.ToArray());
        Number(normalizer, 3, AddDummyPrefix ? 1 : 0);
        Number(normalizer, 4, RemoveExtraWhitespaces ? 1 : 0);
        Number(normalizer, 5, 1);
        Bytes(model, 3, [.. normalizer]);
        return [.. model];
    }

    private readonly record struct Value(ulong Number, byte[]? Bytes);

    // Top-level fields of a protobuf message: varints, fixed32/64 as numbers, length-delimited as bytes.
    private static IEnumerable<(int Field, Value Value)> Fields(byte[] message)
    {
        int at = 0;
        while (at < message.Length)
        {
            ulong key = Varint(message, ref at);
            int field = (int)(key >> 3);
            switch (key & 7)
            {
                case 0: yield return (field, new Value(Varint(message, ref at), null)); break;
                case 1: yield return (field, new Value(BitConverter.ToUInt64(message, at), null)); at += 8; break;
                case 5: yield return (field, new Value(BitConverter.ToUInt32(message, at), null)); at += 4; break;
                case 2:
                    int length = checked((int)Varint(message, ref at));
                    if (length < 0 || at + length > message.Length)
                        throw new ArgumentException($"a field of {length} bytes runs past the end");
                    yield return (field, new Value(0, message[at..(at + length)]));
                    at += length;
                    break;
                default: throw new ArgumentException($"wire type {key & 7} is not supported");
            }
        }
    }

    private static ulong Varint(byte[] bytes, ref int at)
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = bytes[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
                return value;
        }
        throw new ArgumentException("a varint is longer than 10 bytes");
    }

    private static void Key(List<byte> output, int field, int wireType) => WriteVarint(output, (ulong)(field << 3 | wireType));

    private static void Number(List<byte> output, int field, long value)
    {
        Key(output, field, 0);
        WriteVarint(output, (ulong)value);
    }

    private static void Bytes(List<byte> output, int field, byte[] value)
    {
        Key(output, field, 2);
        WriteVarint(output, (ulong)value.Length);
        output.AddRange(value);
    }

    private static void WriteVarint(List<byte> output, ulong value)
    {
        while (value >= 0x80)
        {
            output.Add((byte)(value | 0x80));
            value >>= 7;
        }
        output.Add((byte)value);
    }
}
