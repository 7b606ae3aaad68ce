namespace Mirage.Core.Attribution.StepFunctions;

/// <summary>
/// Step functions by name (Inseq's ids, so results compare). New ones register without touching
/// the others; an existing name is only replaced when asked, and unknown names fail listing the known ones.
/// </summary>
public sealed class StepFunctionRegistry
{
    private readonly Dictionary<string, StepFunction> _functions = new(StringComparer.Ordinal);

    /// <summary>A registry holding the built-in step functions.</summary>
    public static StepFunctionRegistry CreateDefault()
    {
        var registry = new StepFunctionRegistry();
        registry.Register("probability", StepFunctionLibrary.Probability);
        registry.Register("log_probability", StepFunctionLibrary.LogProbability);
        registry.Register("logit", StepFunctionLibrary.Logit);
        registry.Register("entropy", StepFunctionLibrary.Entropy);
        registry.Register("contrast_prob_diff", StepFunctionLibrary.ContrastProbDiff);
        registry.Register("contrast_logprob_diff", StepFunctionLibrary.ContrastLogProbDiff);
        registry.Register("contrast_logits_diff", StepFunctionLibrary.ContrastLogitsDiff);
        registry.Register("kl_divergence", StepFunctionLibrary.KlDivergence);
        registry.Register("pcxmi", StepFunctionLibrary.Pcxmi);
        return registry;
    }

    /// <summary>Registered names.</summary>
    public IReadOnlyCollection<string> Names => _functions.Keys;

    /// <summary>Adds a step function; fails if the name exists unless <paramref name="overwrite"/>.</summary>
    public void Register(string name, StepFunction function, bool overwrite = false)
    {
        if (!overwrite && _functions.ContainsKey(name))
            throw new MirageException($"A step function named '{name}' is already registered; pass overwrite: true to replace it.");
        _functions[name] = function;
    }

    /// <summary>The step function with this name.</summary>
    public StepFunction Get(string name) =>
        _functions.TryGetValue(name, out var function) ? function
        : throw new MirageException($"Unknown step function '{name}'; choose one of {string.Join(", ", _functions.Keys)}.");
}
