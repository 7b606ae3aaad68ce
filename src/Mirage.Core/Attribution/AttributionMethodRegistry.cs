using Mirage.Core.Attribution.Methods;

namespace Mirage.Core.Attribution;

/// <summary>
/// Attribution methods by name: an explicit table, no reflection. A new method is one class and
/// one <see cref="Register"/> call; unknown names fail listing the known ones.
/// </summary>
public sealed class AttributionMethodRegistry
{
    private readonly Dictionary<string, IAttributionMethod> _methods = new(StringComparer.Ordinal);

    /// <summary>A registry holding the built-in methods.</summary>
    public static AttributionMethodRegistry CreateDefault()
    {
        var registry = new AttributionMethodRegistry();
        registry.Register(new SaliencyMethod());
        registry.Register(new InputXGradientMethod());
        registry.Register(new IntegratedGradientsMethod());
        registry.Register(new AttentionMethod());
        registry.Register(new OcclusionMethod());
        registry.Register(new ValueZeroingMethod());
        registry.Register(new LayerGradientXActivationMethod());
        registry.Register(new LayerIntegratedGradientsMethod());
        return registry;
    }

    /// <summary>The built-in methods' names, in registration order (what CLIs and request validation offer).</summary>
    public static IReadOnlyList<string> BuiltInNames { get; } = [.. CreateDefault().Names];

    /// <summary>Registered names.</summary>
    public IReadOnlyCollection<string> Names => _methods.Keys;

    /// <summary>Adds a method; fails if its name exists unless <paramref name="overwrite"/>.</summary>
    public void Register(IAttributionMethod method, bool overwrite = false)
    {
        ArgumentNullException.ThrowIfNull(method);
        if (!overwrite && _methods.ContainsKey(method.Name))
            throw new MirageException($"An attribution method named '{method.Name}' is already registered; pass overwrite: true to replace it.");
        _methods[method.Name] = method;
    }

    /// <summary>The method with this name.</summary>
    public IAttributionMethod Get(string name) =>
        _methods.TryGetValue(name, out var method) ? method
        : throw new MirageException($"Unknown attribution method '{name}'; choose one of {string.Join(", ", _methods.Keys)}.");
}
