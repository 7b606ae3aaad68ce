using System.Text.Json;
using System.Text.Json.Nodes;
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
        // The web defaults read "0.1" as a number; a mistyped field is the client's error to hear about.
        NumberHandling = JsonNumberHandling.Strict,
    };

    /// <summary>The body as <typeparamref name="T"/>, or the error response to send instead.</summary>
    public static async Task<(T? Value, IResult? Error)> ReadAsync<T>(HttpRequest request, CancellationToken cancellationToken) where T : class
    {
        if (!Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out var type)
            || !string.Equals(type.MediaType.Value, "application/json", StringComparison.OrdinalIgnoreCase)
            || type.Charset.HasValue && !string.Equals(type.Charset.Value, "utf-8", StringComparison.OrdinalIgnoreCase))
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

    /// <summary>
    /// The fields of one <c>url_citation</c>, the same on both endpoints: an untitled passage is titled
    /// by its id (clients show the title). The url is what the caller sent and is untrusted: render it
    /// as a link only for http(s).
    /// </summary>
    public static JsonObject UrlCitation(string? url, string id, string? title, int start, int end, double score) => new()
    {
        ["url"] = PassageUrl(url, id),
        ["title"] = string.IsNullOrWhiteSpace(title) ? id : title,
        ["start_index"] = start,
        ["end_index"] = end,
        ["passage_id"] = id,
        ["score"] = score,
    };

    /// <summary>What a JSON value is, in a client's words ("a number", not a .NET type).</summary>
    public static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    /// <summary>Null when a JSON string holds valid UTF-8 (the reader checks it only when the string is read), else what is wrong.</summary>
    public static string? StringProblem(JsonElement value, string where)
    {
        try
        {
            value.GetString();
            return null;
        }
        catch (InvalidOperationException)
        {
            return $"{where} is not valid UTF-8.";
        }
    }

    /// <summary>A problem-details response.</summary>
    public static IResult Problem(int status, string title, string detail) => Results.Problem(detail: detail, statusCode: status, title: title);
}
