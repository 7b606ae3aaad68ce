using Microsoft.SemanticKernel;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Integration;
using Mirage.SemanticKernel.Filters;
using Mirage.SemanticKernel.Passages;

namespace Mirage.SemanticKernel;

/// <summary>Adds Mirage citations to a kernel built without dependency injection.</summary>
public static class MirageKernelExtensions
{
    /// <summary>Adds Mirage's filter to <paramref name="kernel"/>, citing with <paramref name="model"/> (settings from <paramref name="configure"/>).</summary>
    public static Kernel UseMirageCitations(this Kernel kernel, LanguageModel model, Action<MirageCitationOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var options = new MirageCitationOptions();
        configure?.Invoke(options);
        return kernel.UseMirageCitations(new MirageCitationService(new MirageCitationEngine(model), model.ModelId, options, [new SemanticKernelPassageReader()]));
    }

    /// <summary>Adds Mirage's filter to <paramref name="kernel"/> with an existing service.</summary>
    public static Kernel UseMirageCitations(this Kernel kernel, MirageCitationService service)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(service);
        System.ComponentModel.DataAnnotations.Validator.ValidateObject(service.Options, new(service.Options), validateAllProperties: true);
        kernel.FunctionInvocationFilters.Add(new MirageFunctionInvocationFilter(service));
        return kernel;
    }
}
