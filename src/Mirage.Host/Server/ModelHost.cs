using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.SemanticKernel;
using Mirage.SemanticKernel.ChatClients;

namespace Mirage.Host.Server;

/// <summary>The loaded model and what serves with it.</summary>
/// <param name="Model">The model.</param>
/// <param name="Engine">Its citation engine.</param>
/// <param name="Chat">Its chat client (generation).</param>
/// <param name="Citations">Citations of chat answers, with failure statuses instead of errors.</param>
public sealed record LoadedModel(LanguageModel Model, MirageCitationEngine Engine, MirageLocalChatClient Chat, MirageCitationService Citations);

/// <summary>
/// Loads the model in the background when the host starts, so the process answers liveness
/// probes at once and readiness (<c>/health</c>) only once the model is in memory.
/// </summary>
public sealed class ModelHost(IOptions<ServerOptions> options, ILogger<ModelHost> logger) : IHostedService, IHealthCheck, IDisposable
{
    private Task<LoadedModel>? _loading;

    /// <summary>The model, or null while it loads or when loading failed.</summary>
    public LoadedModel? Current => _loading is { IsCompletedSuccessfully: true } loaded ? loaded.Result : null;

    /// <summary>Why the model is not available, for a 503 body.</summary>
    public string Unavailable => _loading?.Exception is { } error ? $"The model failed to load: {error.GetBaseException().Message}" : "The model is still loading; retry shortly.";

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var directory = options.Value.ModelPath ?? LanguageModel.EmbeddedReaderDirectory;
        _loading = Task.Run(() =>
        {
            var model = LanguageModel.Load(directory);
            var engine = new MirageCitationEngine(model);
            logger.LogInformation("Loaded {Model} ({Parameters:N0} parameters) from {Directory}", model.ModelId, model.ParameterCount, directory);
            return new LoadedModel(model, engine, new MirageLocalChatClient(model), new MirageCitationService(engine, model.ModelId));
        }, cancellationToken);
        _loading.ContinueWith(t => logger.LogError(t.Exception, "Loading the model from {Directory} failed", directory), TaskContinuationOptions.OnlyOnFaulted);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(Current is { } loaded
            ? HealthCheckResult.Healthy($"{loaded.Model.ModelId} loaded")
            : HealthCheckResult.Unhealthy(Unavailable));

    /// <inheritdoc />
    public void Dispose()
    {
        if (Current is { } loaded)
        {
            loaded.Chat.Dispose();
            loaded.Model.Dispose();
        }
    }
}
