using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Mirage.Host.Server;
using Mirage.Tests;

namespace Mirage.Host.Tests.Server;

/// <summary>A real <c>mirage serve</c> on a free 127.0.0.1 port with the embedded reader, ready when created.</summary>
internal sealed class RunningServer : IAsyncDisposable
{
    private RunningServer(WebApplication app, Uri address)
    {
        App = app;
        Address = address;
        Http = new HttpClient { BaseAddress = address };
    }

    public WebApplication App { get; }

    public Uri Address { get; }

    public HttpClient Http { get; }

    /// <summary>The loaded model; a test that takes its <c>ComputeGate</c> holds every request's work until it lets go.</summary>
    public Mirage.Core.Models.LanguageModel Model => App.Services.GetRequiredService<ModelHost>().Current!.Model;

    public static Task<RunningServer> StartAsync(params string[] settings) => StartAsync(null, settings);

    /// <summary>Starts a server; <paramref name="configure"/> may add services (exporters) to its builder.</summary>
    public static async Task<RunningServer> StartAsync(Action<WebApplicationBuilder>? configure, params string[] settings)
    {
        var app = MirageServer.Build(["--urls=http://127.0.0.1:0", $"--Server:ModelPath={SharedAssets.EmbeddedReader}", .. settings], configure);
        await app.StartAsync(TestContext.Current.CancellationToken);
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        var server = new RunningServer(app, address);
        // Ready once the model has loaded.
        for (int i = 0; i < 200 && (await server.Http.GetAsync("/health", TestContext.Current.CancellationToken)).StatusCode != System.Net.HttpStatusCode.OK; i++)
            await Task.Delay(50, TestContext.Current.CancellationToken);
        return server;
    }

    public static string Question => "Which organisation does Lousdrur Rourti work for, and where was Lousdrur Rourti born?";

    public static string Answer => "Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grouscelford.";

    public static object[] Passages { get; } = System.Text.Json.JsonSerializer.Deserialize<object[]>(File.ReadAllText(Path.Combine(SharedAssets.RepositoryRoot, "samples", "reader-passages.json")))!;

    public Task<HttpResponseMessage> PostAsync(string path, object body, string? key = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        if (key is not null)
            request.Headers.Authorization = new("Bearer", key);
        return Http.SendAsync(request, TestContext.Current.CancellationToken);
    }

    /// <summary>Posts a request (a citation request unless <paramref name="path"/> says otherwise) in a trace of the caller's own, as a traced client sends it (W3C traceparent).</summary>
    public Task<HttpResponseMessage> PostTracedAsync(object body, System.Diagnostics.ActivityTraceId trace, CancellationToken cancellationToken, string path = "/v1/citations")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        request.Headers.Add("traceparent", $"00-{trace}-{System.Diagnostics.ActivitySpanId.CreateRandom()}-01");
        return Http.SendAsync(request, cancellationToken);
    }

    /// <summary>Completes when a <c>cite</c> span of <paramref name="trace"/> starts: the model is working on that request.</summary>
    public static CiteWatch WhenCiteStarts(System.Diagnostics.ActivityTraceId trace) => new(trace);

    internal sealed class CiteWatch : IDisposable
    {
        private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly System.Diagnostics.ActivityListener _listener;

        public CiteWatch(System.Diagnostics.ActivityTraceId trace)
        {
            _listener = new System.Diagnostics.ActivityListener
            {
                ShouldListenTo = source => source.Name == ServerTelemetry.Name,
                Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllData,
                ActivityStarted = span => { if (span.TraceId == trace && span.OperationName.StartsWith("cite ", StringComparison.Ordinal)) _started.TrySetResult(); },
            };
            System.Diagnostics.ActivitySource.AddActivityListener(_listener);
        }

        public Task Started => _started.Task;

        public void Dispose() => _listener.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync(CancellationToken.None);
        await App.DisposeAsync();
    }
}
