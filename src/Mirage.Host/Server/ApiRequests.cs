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
            return (null, Problem(StatusCodes.Status400BadRequest, "Malformed request", Explain(typeof(T), e)));
        }
        catch (BadHttpRequestException e)
        {
            return (null, Problem(e.StatusCode, e.StatusCode == StatusCodes.Status413PayloadTooLarge ? "Request too large" : "Bad request", e.Message));
        }
        catch (IOException e) when (!cancellationToken.IsCancellationRequested)
        {
            // Kestrel's words for a body it cannot frame (a chunk size past 64 bits, say).
            return (null, Problem(StatusCodes.Status400BadRequest, "Bad request", $"The request body could not be read: {e.Message}"));
        }
    }

    /// <summary>
    /// What is wrong with a body in the client's terms: the field (as a JSON path) and what it must
    /// be, never a .NET type name. The serializer's own words are kept only for broken JSON syntax.
    /// </summary>
    internal static string Explain(Type request, JsonException e)
    {
        var path = (e.Path ?? "$").TrimStart('$').TrimStart('.');
        var message = e.Message;
        if (message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
            return $"'{path}' is not a field of this request; the fields there are: {string.Join(", ", Fields(TypeAt(request, Parent(path))))}.";
        if (message.Contains("missing required properties", StringComparison.Ordinal))
        {
            var names = System.Text.RegularExpressions.Regex.Matches(message[message.IndexOf("including:", StringComparison.Ordinal)..], "'([^']+)'").Select(m => Join(path, m.Groups[1].Value));
            return $"Required field missing: {string.Join(", ", names.Select(n => $"'{n}'"))}.";
        }
        if (message.Contains("null", StringComparison.OrdinalIgnoreCase) && e.InnerException is null && message.Contains("doesn't allow", StringComparison.Ordinal))
            return $"'{path}' must not be null.";
        // The reader checks a string's UTF-8 only when the string is read, and reports it as a failed conversion.
        if (e.InnerException is InvalidOperationException { Message: var inner } && inner.Contains("UTF-8", StringComparison.Ordinal))
            return $"'{(path.Length > 0 ? path : "$")}' is not valid UTF-8.";
        if (path.Length == 0 && message.Contains("could not be converted", StringComparison.Ordinal))
            return "The body must be a JSON object.";
        if (path.Length > 0 && TypeAt(request, path) is { } expected && message.Contains("could not be converted", StringComparison.Ordinal))
            return $"'{path}' must be {Describe(expected)}.";
        var cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        return $"The body is not valid JSON: {(cut >= 0 ? message[..cut] : message)}{(path.Length > 0 ? $" (at '{path}')" : "")}";
    }

    private static string Join(string parent, string field) => parent.Length == 0 ? field : $"{parent}.{field}";

    private static string Parent(string path) => path.LastIndexOf('.') is var dot and >= 0 ? path[..dot] : "";

    // The .NET type a JSON path leads to in a request type, or null where it cannot be followed.
    private static Type? TypeAt(Type type, string path)
    {
        Type? current = type;
        foreach (var part in System.Text.RegularExpressions.Regex.Matches(path, @"[^.\[\]]+|\[\d+\]").Select(m => m.Value))
        {
            if (current is null)
                return null;
            current = Nullable.GetUnderlyingType(current) ?? current;
            current = part.StartsWith('[')
                ? ElementType(current)
                : current.GetProperties().FirstOrDefault(p => Json.PropertyNamingPolicy!.ConvertName(p.Name) == part)?.PropertyType;
        }
        return current is null ? null : Nullable.GetUnderlyingType(current) ?? current;
    }

    private static Type? ElementType(Type type) =>
        type.IsArray ? type.GetElementType() : type.GetInterfaces().Append(type).FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>))?.GetGenericArguments()[0];

    private static IEnumerable<string> Fields(Type? type) =>
        type is null || type == typeof(string) ? [] : type.GetProperties().Where(p => p.CanWrite || p.DeclaringType!.GetConstructors().Any(c => c.GetParameters().Any(a => a.Name == p.Name)))
            .Select(p => Json.PropertyNamingPolicy!.ConvertName(p.Name));

    private static string Describe(Type type) => type switch
    {
        _ when type == typeof(string) => "a string",
        _ when type == typeof(int) || type == typeof(long) => "an integer",
        _ when type == typeof(double) || type == typeof(float) => "a number",
        _ when type == typeof(bool) => "true or false",
        _ when type == typeof(JsonElement) => "a JSON value",
        _ when type != typeof(string) && ElementType(type) is not null => "a list",
        _ => "an object",
    };

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
