using System.Text.Json;
using System.Text.Json.Serialization;

namespace Mirage.Core.Citations;

/// <summary>The JSON settings of Mirage's results: snake_case names, enums as strings.</summary>
public static class MirageJson
{
    /// <summary>Options for serialising and reading results.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
    };

    /// <summary>A result as JSON text.</summary>
    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    /// <summary>A result read back from JSON text.</summary>
    public static T Deserialize<T>(string json) => JsonSerializer.Deserialize<T>(json, Options)
        ?? throw new MirageException("The JSON holds no value.");
}
