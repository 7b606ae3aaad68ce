using Mirage.Core.Attribution.StepFunctions;
using Mirage.Core.Models;

namespace Mirage.Core.Attribution;

/// <summary>
/// Runs a named attribution method with a named step function: checks the request once, then
/// hands it to the method. Holds the method and step-function registries.
/// </summary>
public sealed class AttributionEngine(AttributionMethodRegistry methods, StepFunctionRegistry stepFunctions)
{
    /// <summary>An engine with the built-in methods and step functions.</summary>
    public static AttributionEngine CreateDefault() => new(AttributionMethodRegistry.CreateDefault(), StepFunctionRegistry.CreateDefault());

    /// <summary>The methods this engine knows.</summary>
    public AttributionMethodRegistry Methods => methods;

    /// <summary>The step functions this engine knows.</summary>
    public StepFunctionRegistry StepFunctions => stepFunctions;

    /// <summary>Explains each target of <paramref name="request"/> with <paramref name="method"/>.</summary>
    public AttributionResult Attribute(LanguageModel model, string method, AttributionRequest request)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(request);
        var implementation = methods.Get(method);
        var function = stepFunctions.Get(request.StepFunction);
        (request.Options ?? new AttributionOptions()).Validate();
        if (request.Targets.Count == 0)
            throw new MirageException("Nothing to attribute: the request has no targets.");
        if (request.Ids.Count > model.ContextLength)
            throw new MirageException($"The input has {request.Ids.Count} tokens, {request.Ids.Count - model.ContextLength} more than the model's {model.ContextLength}-token context.");
        foreach (var target in request.Targets)
        {
            if (target.Position < 1 || target.Position >= request.Ids.Count)
                throw new MirageException($"Target position {target.Position} is outside 1..{request.Ids.Count - 1}: a target needs at least one token before it.");
            if (request.Ids[target.Position] != target.TokenId)
                throw new MirageException($"Target at position {target.Position} names token {target.TokenId}, but the input has {request.Ids[target.Position]} there.");
        }
        return implementation.Attribute(model, request, new TargetEvaluator(function, request));
    }
}
