using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Mirage.Host.Server;

/// <summary>
/// One structured log line and one duration measurement per request: method, path, status,
/// milliseconds and sizes. Request bodies appear in the log only when
/// <see cref="ServerOptions.LogContent"/> is on (they may hold private text).
/// </summary>
internal sealed class RequestLogging(RequestDelegate next, ServerTelemetry telemetry, IOptions<ServerOptions> options, ILogger<RequestLogging> logger)
{
    private const int MaxLoggedChars = 4096;

    public async Task InvokeAsync(HttpContext http)
    {
        var clock = Stopwatch.StartNew();
        string? body = null;
        if (options.Value.LogContent && http.Request.ContentLength is > 0)
        {
            http.Request.EnableBuffering();
            using var reader = new StreamReader(http.Request.Body, leaveOpen: true);
            var buffer = new char[MaxLoggedChars];
            body = new string(buffer, 0, await reader.ReadBlockAsync(buffer, http.RequestAborted));
            http.Request.Body.Position = 0;
        }
        try
        {
            await next(http);
        }
        finally
        {
            var route = (http.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
            telemetry.RequestDuration.Record(clock.Elapsed.TotalSeconds,
                new KeyValuePair<string, object?>("http.route", route), new KeyValuePair<string, object?>("http.response.status_code", http.Response.StatusCode));
            logger.LogInformation("{Method} {Path} -> {Status} in {Milliseconds:F0} ms ({RequestBytes} bytes in)",
                http.Request.Method, http.Request.Path, http.Response.StatusCode, clock.Elapsed.TotalMilliseconds, http.Request.ContentLength ?? 0);
            if (body is not null)
                logger.LogInformation("Request body of {Path}: {Body}", http.Request.Path, body);
        }
    }
}
