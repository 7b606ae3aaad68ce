using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.SemanticKernel;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.SemanticKernel.Filters;

namespace Mirage.SemanticKernel;

/// <summary>Registers Mirage citations in a service collection.</summary>
public static class MirageServiceCollectionExtensions
{
    /// <summary>
    /// Adds Mirage: options (bound from the <c>Mirage</c> configuration section when there is an
    /// <see cref="IConfiguration"/>, then <paramref name="configure"/>; validated on start), the
    /// attribution model (an already registered <see cref="LanguageModel"/>, else loaded from
    /// <see cref="MirageCitationOptions.ModelPath"/> or the embedded reader), the citation engine and
    /// service, and the Semantic Kernel filter, which kernels built from this provider pick up.
    /// </summary>
    public static IServiceCollection AddMirageCitations(this IServiceCollection services, Action<MirageCitationOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<MirageCitationOptions>()
            .Configure<IServiceProvider>((o, provider) => provider.GetService<IConfiguration>()?.GetSection(MirageCitationOptions.SectionName).Bind(o))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        if (configure is not null)
            options.Configure(configure);
        services.TryAddSingleton(provider => LoadModel(provider.GetRequiredService<IOptions<MirageCitationOptions>>().Value));
        services.TryAddSingleton<ICitationEngine>(provider => new MirageCitationEngine(provider.GetRequiredService<LanguageModel>()));
        services.TryAddSingleton(provider => new MirageCitationService(
            provider.GetRequiredService<ICitationEngine>(),
            provider.GetRequiredService<LanguageModel>().ModelId,
            provider.GetRequiredService<IOptions<MirageCitationOptions>>().Value));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IFunctionInvocationFilter, MirageFunctionInvocationFilter>());
        return services;
    }

    // The engine follows the configured one, and for auto the citation method: gradients need TorchSharp.
    private static LanguageModel LoadModel(MirageCitationOptions options) => LanguageModel.Load(ModelDirectory(options), new ComputeOptions
    {
        Engine = options.Engine,
        DType = ComputeOptions.ParseDType(options.DType),
        NeedsGradients = options.Method == Core.Citations.CitationMethod.Cci,
    });

    /// <summary>The attribution model's folder: the configured path, else <c>models/reader</c> next to the application.</summary>
    public static string ModelDirectory(MirageCitationOptions options) =>
        options.ModelPath ?? LanguageModel.EmbeddedReaderDirectory;
}
