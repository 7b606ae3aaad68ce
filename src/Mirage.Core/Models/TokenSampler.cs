using TorchSharp;
using static TorchSharp.torch;

namespace Mirage.Core.Models;

/// <summary>Picks the next token from last-position logits: argmax, or temperature + top-p sampling.</summary>
internal sealed class TokenSampler : IDisposable
{
    // Below this temperature sampling is argmax up to float precision, and dividing by it overflows.
    private const double GreedyBelow = 1e-6;
    // A top-p this small keeps the most likely token only; smaller ones round to 0 in float32, which would keep none.
    private const double SmallestTopP = 1e-6;

    private readonly GenerationOptions _options;
    private readonly Generator? _generator;

    public TokenSampler(GenerationOptions options, Device device)
    {
        _options = options;
        if (options.Temperature >= GreedyBelow)
            _generator = new Generator((ulong)(options.Seed ?? Random.Shared.NextInt64()), device);
    }

    /// <summary>The next token for logits <c>[V]</c> (float32).</summary>
    public int Next(Tensor logits)
    {
        using var scope = NewDisposeScope();
        if (_generator is null)
            return (int)logits.argmax().item<long>();

        var probabilities = logits.DividedBy(_options.Temperature).softmax(-1); // [V]
        if (_options.TopP < 1)
        {
            var (sorted, order) = probabilities.sort(descending: true);
            // Drop tokens once the mass before them already reaches top-p; the first always stays.
            using var topP = Math.Max(_options.TopP, SmallestTopP).ToScalar();
            var drop = (sorted.cumsum(0) - sorted).ge(topP);
            sorted = sorted.masked_fill(drop, TorchScalars.Zero);
            var choice = sorted.multinomial(1, generator: _generator);
            return (int)order[choice].item<long>();
        }
        return (int)probabilities.multinomial(1, generator: _generator).item<long>();
    }

    public void Dispose() => _generator?.Dispose();
}
