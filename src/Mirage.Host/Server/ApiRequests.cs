using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using Mirage.Core.Citations;

namespace Mirage.Host.Server;

/// <summary>Reads JSON request bodies strictly, turning every problem into a problem-details response that says what is wrong.</summary>
internal static class ApiRequests
{
    /// <summary>The names of Mirage's results (<see cref="MirageJson"/>), read strictly: no unknown members, no missing required ones, no nulls where none are allowed.</summary>
    public static JsonSerializerOptions Json { get; } = new(MirageJson.Options)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };

    /// <summary>The body as <typeparamref name="T"/>, or the error response to send instead.</summary>
    public static async Task<(T? Value, IResult? Error)> ReadAsync<T>(HttpRequest request, CancellationToken cancellationToken) where T : class
    {
        if (request.ContentType is not { } type || !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
            return (null, Problem(StatusCodes.Status415UnsupportedMediaType, "Unsupported content type", "Send the request as JSON (Content-Type: application/json)."));
        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(request.Body, Json, cancellationToken).ConfigureAwait(false);
            return value is null ? (null, Problem(StatusCodes.Status400BadRequest, "Empty request", "The body is JSON null; send an object.")) : (value, null);
        }
        catch (JsonException e)
        {
            var where = e.Path is { Length: > 1 } path ? $" (at {path})" : "";
            return (null, Problem(StatusCodes.Status400BadRequest, "Malformed request", $"{e.Message}{where}".Replace("Path: $ | ", "")));
        }
        catch (BadHttpRequestException e)
        {
            return (null, Problem(e.StatusCode, e.StatusCode == StatusCodes.Status413PayloadTooLarge ? "Request too large" : "Bad request", e.Message));
        }
    }

    /// <summary>A passage's url for a <c>url_citation</c>: its own, else <c>urn:mirage:passage:ID</c> (clients expect an absolute URI).</summary>
    public static string PassageUrl(string? url, string? id) =>
        Uri.TryCreate(url, UriKind.Absolute, out _) ? url! : $"urn:mirage:passage:{Uri.EscapeDataString(id ?? "")}";

    /// <summary>A problem-details response.</summary>
    public static IResult Problem(int status, string title, string detail) => Results.Problem(detail: detail, statusCode: status, title: title);
}
