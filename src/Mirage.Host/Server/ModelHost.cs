using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Mirage.Core.Citations;
using Mirage.Core.Models;
using Mirage.Core.Integration;
using Mirage.Extensions.AI.ChatClients;

namespace Mirage.Host.Server;

/// <summary>The loaded model and what serves with it.</summary>
/// <param name="Model">The model.</param>
/// <param name="Engine">Its citation engine.</param>
/// <param name="Chat">Its chat client (generation).</param>
/// <param name="Citations">Citations of chat answers, with failure statuses instead of errors.</param>
public sealed record LoadedModel(LanguageModel Model, MirageCitationEngine Engine, MirageLocalChatClient Chat, MirageCitationService Citations);

/// <summary>
/// Loads the model in the background once the host has started (so a start that fails, such as a
/// port in use, never begins loading), and the process answers liveness probes at once and
/// readiness (<c>/health</c>) only once the model is in memory.
/// </summary>
public sealed class ModelHost(IOptions<ServerOptions> options, IHostApplicationLifetime lifetime, ILogger<ModelHost> logger) : IHostedService, IHealthCheck, IDisposable
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
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lifetime.ApplicationStarted.Register(started.SetResult);
        _loading = Task.Run(async () =>
        {
            await started.Task;
            var model = LanguageModel.Load(directory, new ComputeOptions
            {
                Engine = ModelEngines.Parse(options.Value.Engine),
                DType = ComputeOptions.ParseDType(options.Value.DType),
            });
            if (model.EngineNote is { } note)
                logger.LogWarning("{Note}", note);
            var engine = new MirageCitationEngine(model);
            logger.LogInformation("Loaded {Model} ({Parameters:N0} parameters) from {Directory} on {Engine}", model.ModelId, model.ParameterCount, directory, ModelEngines.NameOf(model.Engine));
            return new LoadedModel(model, engine, new MirageLocalChatClient(model), new MirageCitationService(engine, model.ModelId, new MirageCitationOptions { MaxPassages = options.Value.MaxPassages }));
        }, CancellationToken.None);
        // A bad model folder is the operator's to fix, and its message says how; a stack helps only for a fault of Mirage's.
        _loading.ContinueWith(t => logger.LogError(t.Exception!.GetBaseException() is Core.MirageException ? null : t.Exception,
            "Loading the model from {Directory} failed: {Reason}", directory, t.Exception!.GetBaseException().Message), TaskContinuationOptions.OnlyOnFaulted);
        return Task.CompletedTask;
    }

    /// <summary>Waits for the load to end; false when it failed (<see cref="Unavailable"/> says why).</summary>
    public async Task<bool> WaitUntilLoadedAsync(CancellationToken cancellationToken)
    {
        var loading = _loading ?? throw new InvalidOperationException("The host has not started.");
        try
        {
            await loading.WaitAsync(cancellationToken);
            return true;
        }
        catch (Exception) when (loading.IsFaulted)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        // Still loading is Degraded, not Unhealthy, so probes during start-up are not logged as errors (/health answers 503 for both).
        Task.FromResult(Current is { } loaded ? HealthCheckResult.Healthy($"{loaded.Model.ModelId} loaded")
            : _loading is { IsFaulted: true } ? HealthCheckResult.Unhealthy(Unavailable)
            : HealthCheckResult.Degraded(Unavailable));

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
