using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.SemanticKernel;
using Mirage.Core.Integration;
using Mirage.Extensions.AI;
using Mirage.SemanticKernel.Filters;
using Mirage.SemanticKernel.Passages;

namespace Mirage.SemanticKernel;

/// <summary>Registers Mirage's citations for kernels built from the service provider.</summary>
public static class MirageSemanticKernelServiceCollectionExtensions
{
    /// <summary>
    /// Adds the citation service (<see cref="MirageServiceCollectionExtensions.AddMirageCitationService"/>),
    /// Semantic Kernel's and Qdrant's result types as passage sources, and Mirage's function
    /// invocation filter, which kernels built from the provider pick up.
    /// </summary>
    public static IServiceCollection AddMirageCitations(this IServiceCollection services, Action<MirageCitationOptions>? configure = null)
    {
        services.AddMirageCitationService(configure);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPassageReader, SemanticKernelPassageReader>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IFunctionInvocationFilter, MirageFunctionInvocationFilter>());
        return services;
    }
}
