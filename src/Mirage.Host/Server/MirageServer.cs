using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Mirage.Host.Server.Scaling;

namespace Mirage.Host.Server;

/// <summary>
/// <c>mirage serve</c>: the citation service on ASP.NET Core minimal APIs. Configuration follows
/// ASP.NET conventions: <c>--urls</c>, appsettings.json, environment (<c>MIRAGE_Server__MaxQueueLength=8</c>)
/// and command line (<c>--Server:ApiKeys:0=KEY</c>); it binds to 127.0.0.1 unless told otherwise.
/// </summary>
public static class MirageServer
{
    /// <summary>Where the service listens by default: loopback only.</summary>
    public const string DefaultUrl = "http://127.0.0.1:5088";

    /// <summary>Builds the service from command-line style <paramref name="args"/>; <paramref name="configure"/> may adjust the builder (tests).</summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddEnvironmentVariables("MIRAGE_");
        builder.Configuration.AddCommandLine(args);
        if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
            builder.WebHost.UseUrls(DefaultUrl);
        var section = builder.Configuration.GetSection(ServerOptions.SectionName);
        ServerOptions settings;
        try
        {
            settings = section.Get<ServerOptions>() ?? new ServerOptions();
        }
        catch (InvalidOperationException e)
        {
            // "Failed to convert configuration value 'x' at 'Server:MaxPassages' to type 'System.Int32'."
            throw new Core.MirageException($"A setting cannot be read: {e.Message}", e);
        }
        builder.Services.AddOptions<ServerOptions>().Bind(section).ValidateDataAnnotations().ValidateOnStart();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = settings.MaxRequestBodyBytes);
        // The host waits for the queue's own drain deadline, plus a margin to finish responses.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(settings.ShutdownTimeoutSeconds + 5));
        builder.Services.AddProblemDetails();
        builder.Services.AddClientLimits(settings);
        builder.Services.AddSingleton<ServerTelemetry>();
        builder.AddServerOpenTelemetry();
        var health = builder.Services.AddHealthChecks();
        if (settings.Role != ServerRoles.Api)
        {
            builder.Services.AddSingleton<ModelHost>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<ModelHost>());
            health.AddCheck<ModelHost>("model", tags: ["ready"]);
        }
        if (settings.Role == ServerRoles.All)
        {
            builder.Services.AddSingleton<WorkQueue>();
            builder.Services.AddSingleton<CitationJobs>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<WorkQueue>());
        }
        else
        {
            builder.Services.AddOptions<NatsOptions>().Bind(builder.Configuration.GetSection(NatsOptions.SectionName)).ValidateDataAnnotations()
                .Validate(o => !string.IsNullOrWhiteSpace(o.Url), $"Nats:Url is not set; --role {settings.Role} needs --nats nats://HOST:4222.").ValidateOnStart();
            builder.Services.AddSingleton<JobBus>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<JobBus>());
            health.AddCheck<JobBus>("nats", tags: ["ready"]);
        }
        if (settings.Role == ServerRoles.Api)
        {
            builder.Services.AddSingleton<JobWatch>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<JobWatch>());
            builder.Services.AddHostedService<DeadLetters>();
            builder.Services.AddSingleton<QueueDepth>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<QueueDepth>());
            builder.Services.AddSingleton<RemoteJobs>();
            builder.Services.AddSingleton<RemoteCitations>();
            builder.Services.AddSingleton<RemoteChat>();
        }
        if (settings.Role == ServerRoles.Worker)
        {
            builder.Services.AddHostedService<JobWorker>();
            builder.Services.AddHostedService<WorkerRegistry>();
        }
        configure?.Invoke(builder);

        var app = builder.Build();
        app.UseExceptionHandler();
        // 404, 405 and the like get a problem-details body as every other error does.
        app.UseStatusCodePages();
        app.Use((http, next) =>
        {
            http.Response.Headers.XContentTypeOptions = "nosniff";
            return next(http);
        });
        app.UseMiddleware<RequestLogging>();
        app.UseMiddleware<ApiKeyAuthentication>();
        app.UseClientLimits(settings);
        if (settings.Role == ServerRoles.All)
            MapSingleProcess(app);
        else if (settings.Role == ServerRoles.Api)
            MapApi(app);
        // Readiness says why it is not ready (still loading, or the load's error), not only that.
        app.MapHealthChecks("/health", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains("ready"),
            ResultStatusCodes = { [HealthStatus.Degraded] = StatusCodes.Status503ServiceUnavailable },
            ResponseWriter = (http, report) => http.Response.WriteAsync(string.Join("\n", report.Entries.Values.Select(e => $"{e.Status}: {e.Description}").Prepend(report.Status.ToString()))),
        });
        app.MapHealthChecks("/alive", new HealthCheckOptions { Predicate = _ => false });
        return app;
    }

    // One process: the model, its queue and the in-memory jobs.
    private static void MapSingleProcess(WebApplication app)
    {
        app.MapGet("/", (HttpContext http) => HtmlPage(http, ServerPage.Html, ServerPage.ContentSecurityPolicy));
        app.MapPost("/v1/citations", CitationsEndpoint.HandleAsync);
        app.MapPost("/v1/flow", FlowEndpoint.HandleAsync);
        app.MapPost("/v1/chat/completions", ChatCompletionsEndpoint.HandleAsync);
        app.MapPost("/v1/citations/jobs", (HttpContext http, ModelHost host, CitationJobs jobs) => jobs.CreateAsync(http, host));
        app.MapGet("/v1/citations/jobs/{id}", (string id, CitationJobs jobs) => jobs.Get(id));
        app.MapDelete("/v1/citations/jobs/{id}", (string id, CitationJobs jobs) => jobs.Delete(id));
        app.MapGet("/v1/models", (ModelHost host) => host.Current is { } loaded
            ? Results.Json(new { @object = "list", data = new[] { new { id = loaded.Model.ModelId, @object = "model", created = 0, owned_by = "mirage" } } })
            : ApiRequests.Problem(StatusCodes.Status503ServiceUnavailable, "Model not ready", host.Unavailable));
    }

    // The api role: the same routes, with the work done by workers over NATS.
    private static void MapApi(WebApplication app)
    {
        app.MapGet("/", (HttpContext http) => HtmlPage(http, ServerPage.Html, ServerPage.ContentSecurityPolicy));
        app.MapPost("/v1/citations", (HttpContext http, RemoteJobs jobs, RemoteCitations citations) => jobs.GuardAsync(http, () => citations.CiteAsync(http)));
        app.MapPost("/v1/flow", (HttpContext http, RemoteJobs jobs, RemoteCitations citations) => jobs.GuardAsync(http, () => citations.FlowAsync(http)));
        app.MapPost("/v1/chat/completions", (HttpContext http, RemoteJobs jobs, RemoteChat chat) => jobs.GuardAsync(http, () => chat.HandleAsync(http)));
        app.MapPost("/v1/citations/jobs", (HttpContext http, RemoteJobs jobs, RemoteCitations citations) => jobs.GuardAsync(http, () => citations.CreateJobAsync(http)));
        app.MapGet("/v1/citations/jobs/{id}", (string id, HttpContext http, RemoteJobs jobs, RemoteCitations citations) => jobs.GuardAsync(http, () => citations.GetJobAsync(id, http.RequestAborted)));
        app.MapDelete("/v1/citations/jobs/{id}", (string id, HttpContext http, RemoteJobs jobs, RemoteCitations citations) => jobs.GuardAsync(http, () => citations.DeleteJobAsync(id, http.RequestAborted)));
        app.MapGet("/v1/models", (HttpContext http, RemoteJobs jobs, RemoteCitations citations) => jobs.GuardAsync(http, () => citations.ModelsAsync(http.RequestAborted)));
    }

    /// <summary>An HTML response under its Content-Security-Policy (which also forbids framing by other sites).</summary>
    internal static IResult HtmlPage(HttpContext http, string html, string contentSecurityPolicy)
    {
        http.Response.Headers.ContentSecurityPolicy = contentSecurityPolicy;
        return Results.Content(html, "text/html; charset=utf-8");
    }
}
