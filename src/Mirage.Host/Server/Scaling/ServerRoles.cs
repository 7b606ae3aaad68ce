namespace Mirage.Host.Server.Scaling;

/// <summary>
/// What a <c>mirage serve</c> process does (<see cref="ServerOptions.Role"/>): <c>all</c>, one process
/// with its own model and in-memory queue (no NATS); <c>api</c>, HTTP only, with jobs on NATS
/// JetStream and no model; <c>worker</c>, a model that takes jobs from NATS (HTTP for health only).
/// </summary>
public static class ServerRoles
{
    /// <summary>One process: HTTP, queue and model.</summary>
    public const string All = "all";

    /// <summary>HTTP, limits and the page; jobs go to workers over NATS.</summary>
    public const string Api = "api";

    /// <summary>A model taking its jobs from NATS.</summary>
    public const string Worker = "worker";

    /// <summary>The three roles.</summary>
    public static IReadOnlyList<string> Names { get; } = [All, Api, Worker];
}
