using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Mirage.Host.Server;

/// <summary>
/// The OpenTelemetry SDK for <c>mirage serve</c>: Mirage's meter and spans plus ASP.NET Core's
/// request spans and <c>http.server.*</c> metrics. Exporting follows OpenTelemetry's own settings:
/// OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (protocol, headers and service name from the
/// standard <c>OTEL_*</c> variables); otherwise nothing leaves the process, and the instruments stay
/// readable by <c>dotnet-counters</c> and any exporter a host adds.
/// </summary>
internal static class OpenTelemetrySetup
{
    public static void AddServerOpenTelemetry(this WebApplicationBuilder builder)
    {
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("mirage", serviceVersion: typeof(OpenTelemetrySetup).Assembly.GetName().Version?.ToString()))
            .WithMetrics(metrics => metrics.AddMeter(ServerTelemetry.Name).AddAspNetCoreInstrumentation())
            .WithTracing(tracing => tracing.AddSource(ServerTelemetry.Name).AddAspNetCoreInstrumentation());
        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
            telemetry.UseOtlpExporter();
    }
}
