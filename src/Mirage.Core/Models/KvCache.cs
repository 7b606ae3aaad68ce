using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>
/// Keys and values of every layer for the tokens seen so far, preallocated to a fixed capacity so
/// each decoding step writes in place instead of concatenating (which would copy the whole cache
/// every step). Layout per layer: <c>[B, KvHeads, Capacity, HeadDim]</c>.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;

    /// <summary>Allocates an empty cache for <paramref name="batch"/> sequences of up to <paramref name="capacity"/> tokens.</summary>
    public KvCache(ModelConfig config, int batch, int capacity, ScalarType dtype, Device device)
    {
        Capacity = capacity;
        _keys = new Tensor[config.NumLayers];
        _values = new Tensor[config.NumLayers];
        for (int i = 0; i < config.NumLayers; i++)
        {
            _keys[i] = zeros([batch, config.NumKeyValueHeads, capacity, config.HeadDim], dtype, device).DetachFromDisposeScope();
            _values[i] = zeros([batch, config.NumKeyValueHeads, capacity, config.HeadDim], dtype, device).DetachFromDisposeScope();
        }
    }

    /// <summary>How many token slots the cache holds.</summary>
    public int Capacity { get; }

    /// <summary>How many token slots are filled (committed by earlier forward passes).</summary>
    public int Length { get; private set; }

    /// <summary>
    /// Writes the new keys and values of one layer after the committed ones and returns views of
    /// everything so far, <c>[B, KvHeads, Length + T, HeadDim]</c>.
    /// </summary>
    internal (Tensor Keys, Tensor Values) Append(int layer, Tensor keys, Tensor values)
    {
        long added = keys.shape[2];
        if (Length + added > Capacity)
            throw new MirageException($"The KV cache holds {Capacity} tokens; {Length} are used and {added} more do not fit.");
        using (no_grad())
        {
            _keys[layer].narrow(2, Length, added).copy_(keys);
            _values[layer].narrow(2, Length, added).copy_(values);
        }
        return (_keys[layer].narrow(2, 0, Length + added), _values[layer].narrow(2, 0, Length + added));
    }

    /// <summary>Marks <paramref name="count"/> more slots as filled, after every layer has appended.</summary>
    internal void Commit(int count) => Length += count;

    /// <summary>
    /// Keeps only the first <paramref name="length"/> slots (the next pass overwrites the rest): a
    /// prefix shared by several inputs is computed once and each input continues from it.
    /// </summary>
    internal void Rewind(int length)
    {
        if (length < 0 || length > Length)
            throw new ArgumentOutOfRangeException(nameof(length), $"The cache holds {Length} slots; it cannot be rewound to {length}.");
        Length = length;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in _keys.Concat(_values))
            t.Dispose();
    }
}
