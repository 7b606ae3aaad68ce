using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Mirage.Core.Citations;
using Mirage.Core.Integration;
using Mirage.Core.Models;

namespace Mirage.Extensions.AI;

/// <summary>Registers Mirage's citation service, for the chat-client middleware and the Semantic Kernel filter.</summary>
public static class MirageServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="MirageCitationService"/> (and the model and engine behind it) as singletons,
    /// with options from the <c>Mirage</c> configuration section, validated on start, then
    /// <paramref name="configure"/>. The service reads retrieval results with every registered
    /// <see cref="IPassageReader"/>. The model loads when the service is first resolved.
    /// </summary>
    public static IServiceCollection AddMirageCitationService(this IServiceCollection services, Action<MirageCitationOptions>? configure = null)
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
            provider.GetRequiredService<IOptions<MirageCitationOptions>>().Value,
            provider.GetServices<IPassageReader>()));
        return services;
    }

    // The engine follows the configured one, and for auto the citation method: gradients need TorchSharp.
    private static LanguageModel LoadModel(MirageCitationOptions options) => LanguageModel.Load(ModelDirectory(options), new ComputeOptions
    {
        Engine = options.Engine,
        DType = ComputeOptions.ParseDType(options.DType),
        NeedsGradients = options.Method != CitationMethod.Ablation,
    });

    /// <summary>The model folder the options name: <see cref="MirageCitationOptions.ModelPath"/>, else the embedded reader.</summary>
    public static string ModelDirectory(MirageCitationOptions options) =>
        options.ModelPath ?? LanguageModel.EmbeddedReaderDirectory;
}
