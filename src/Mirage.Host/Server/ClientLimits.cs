using System.Security.Cryptography;
using System.Text;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Mirage.Host.Server;

/// <summary>
/// Per-client limits on the model endpoints (<see cref="ServerOptions.PerClientConcurrency"/>,
/// <see cref="ServerOptions.PerClientRequestsPerMinute"/>), so one client cannot fill the queue that
/// everyone shares: a client is its API key (hashed; the key itself is never kept) or, without keys,
/// its address. Past a limit: 429 with Retry-After. ASP.NET Core's rate limiter does the counting.
/// </summary>
internal static class ClientLimits
{
    public static void AddClientLimits(this IServiceCollection services, ServerOptions options)
    {
        if (options.PerClientConcurrency == 0 && options.PerClientRequestsPerMinute == 0)
            return;
        services.AddRateLimiter(limiter =>
        {
            var limiters = new List<PartitionedRateLimiter<HttpContext>>();
            if (options.PerClientConcurrency > 0)
                limiters.Add(PartitionedRateLimiter.Create<HttpContext, string>(http => Client(http) is { } client
                    ? RateLimitPartition.GetConcurrencyLimiter(client, _ => new ConcurrencyLimiterOptions { PermitLimit = options.PerClientConcurrency, QueueLimit = 0 })
                    : RateLimitPartition.GetNoLimiter("")));
            if (options.PerClientRequestsPerMinute > 0)
                limiters.Add(PartitionedRateLimiter.Create<HttpContext, string>(http => Client(http) is { } client
                    ? RateLimitPartition.GetFixedWindowLimiter(client, _ => new FixedWindowRateLimiterOptions { PermitLimit = options.PerClientRequestsPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 })
                    : RateLimitPartition.GetNoLimiter("")));
            limiter.GlobalLimiter = limiters.Count == 1 ? limiters[0] : PartitionedRateLimiter.CreateChained([.. limiters]);
            limiter.OnRejected = async (context, cancellationToken) =>
            {
                int wait = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : options.RetryAfterSeconds;
                context.HttpContext.Response.Headers.RetryAfter = wait.ToString(System.Globalization.CultureInfo.InvariantCulture);
                await ApiRequests.Problem(StatusCodes.Status429TooManyRequests, "Too many requests",
                    $"This client is at its limit ({Describe(options)}); retry after {wait} s.").ExecuteAsync(context.HttpContext);
            };
        });
    }

    public static void UseClientLimits(this WebApplication app, ServerOptions options)
    {
        if (options.PerClientConcurrency > 0 || options.PerClientRequestsPerMinute > 0)
            app.UseRateLimiter();
    }

    // Model work only: POSTs under /v1. Health probes, the page and /v1/models stay open.
    private static string? Client(HttpContext http)
    {
        if (!HttpMethods.IsPost(http.Request.Method) || !http.Request.Path.StartsWithSegments("/v1"))
            return null;
        var authorization = http.Request.Headers.Authorization.ToString();
        return authorization.Length > 0
            ? "key:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(authorization)))[..32]
            : "address:" + http.Connection.RemoteIpAddress;
    }

    private static string Describe(ServerOptions options) => string.Join(", ", new[]
    {
        options.PerClientConcurrency > 0 ? $"{options.PerClientConcurrency} at once (Server:PerClientConcurrency)" : null,
        options.PerClientRequestsPerMinute > 0 ? $"{options.PerClientRequestsPerMinute} a minute (Server:PerClientRequestsPerMinute)" : null,
    }.Where(d => d is not null));
}
