using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Mirage.Host.Server;

/// <summary>
/// One structured log line per request: method, path, status, milliseconds and size (the duration
/// metric is ASP.NET Core's <c>http.server.request.duration</c>). Request bodies appear in the log only when
/// <see cref="ServerOptions.LogContent"/> is on (they may hold private text).
/// </summary>
internal sealed class RequestLogging(RequestDelegate next, IOptions<ServerOptions> options, ILogger<RequestLogging> logger)
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
            logger.LogInformation("{Method} {Path} -> {Status} in {Milliseconds:F0} ms ({RequestBytes} bytes in)",
                http.Request.Method, http.Request.Path, http.Response.StatusCode, clock.Elapsed.TotalMilliseconds, http.Request.ContentLength ?? 0);
            if (body is not null)
                logger.LogInformation("Request body of {Path}: {Body}", http.Request.Path, body);
        }
    }
}
