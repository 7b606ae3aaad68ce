using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Mirage.Host.Server;

/// <summary>
/// When API keys are configured, every <c>/v1</c> call needs <c>Authorization: Bearer KEY</c> with
/// one of them (compared in constant time); otherwise 401 with <c>WWW-Authenticate: Bearer</c>.
/// Health probes and the page stay open.
/// </summary>
internal sealed class ApiKeyAuthentication(RequestDelegate next, IOptions<ServerOptions> options)
{
    private readonly byte[][] _keys = options.Value.ApiKeys.Select(Encoding.UTF8.GetBytes).ToArray();

    public async Task InvokeAsync(HttpContext http)
    {
        if (_keys.Length == 0 || !http.Request.Path.StartsWithSegments("/v1") || Authorized(http.Request.Headers.Authorization.ToString()))
        {
            await next(http);
            return;
        }
        http.Response.Headers.WWWAuthenticate = "Bearer";
        await ApiRequests.Problem(StatusCodes.Status401Unauthorized, "Unauthorized", "Send an API key as 'Authorization: Bearer KEY'.").ExecuteAsync(http);
    }

    private bool Authorized(string header)
    {
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            return false;
        var given = Encoding.UTF8.GetBytes(header[scheme.Length..].Trim());
        bool match = false;
        foreach (var key in _keys)
            match |= CryptographicOperations.FixedTimeEquals(given, key);
        return match;
    }
}
