using System.ComponentModel.DataAnnotations;
using NATS.Client.Core;

namespace Mirage.Host.Server.Scaling;

/// <summary>
/// How the api and worker roles reach NATS, from the <c>Nats</c> section (appsettings, environment
/// <c>MIRAGE_Nats__Password</c>, command line <c>--Nats:Url=...</c>). Secrets are never logged.
/// </summary>
public sealed class NatsOptions : IValidatableObject
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Nats";

    /// <summary>The servers, comma-separated (<c>nats://10.0.0.1:4222,nats://10.0.0.2:4222</c>); set by <c>--nats</c>.</summary>
    public string? Url { get; set; }

    /// <summary>A NATS credentials file (JWT and NKey seed), for operator-mode accounts.</summary>
    public string? CredentialsFile { get; set; }

    /// <summary>User name, with <see cref="Password"/>.</summary>
    public string? User { get; set; }

    /// <summary>Password for <see cref="User"/>; set it from the environment or a secret store, not a file in the repository.</summary>
    public string? Password { get; set; }

    /// <summary>Require TLS to the servers (a <c>tls://</c> URL requires it too).</summary>
    public bool Tls { get; set; }

    /// <summary>A CA bundle that signs the servers' certificates, when it is not in the system store.</summary>
    public string? TlsCaFile { get; set; }

    /// <summary>The JetStream stream that holds waiting jobs (created when missing).</summary>
    public string Stream { get; set; } = "MIRAGE_JOBS";

    /// <summary>Copies of the job stream and buckets across a NATS cluster (1 on a single server; 3 tolerates one node down).</summary>
    [Range(1, 5)]
    public int Replicas { get; set; } = 1;

    /// <summary>
    /// How long a worker may go without acknowledging a job before JetStream hands it to another
    /// worker. Live workers report progress every third of this, so it bounds how long a dead
    /// worker's job waits, not how long a job may run.
    /// </summary>
    [Range(1, 3600)]
    public double AckWaitSeconds { get; set; } = 30;

    /// <summary>Tries a job gets (a worker dying mid-job costs one); after the last, the job fails naming this setting.</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = 3;

    /// <summary>How often a worker says it is alive; the api forgets a worker after three missed beats.</summary>
    [Range(0.1, 300)]
    public double HeartbeatSeconds { get; set; } = 5;

    /// <summary>The connection options for the NATS client (<paramref name="name"/> shows in the server's connection list).</summary>
    public NatsOpts ToNatsOpts(string name) => NatsOpts.Default with
    {
        Url = Url!,
        Name = name,
        AuthOpts = NatsAuthOpts.Default with { CredsFile = CredentialsFile, Username = User, Password = Password },
        TlsOpts = NatsTlsOpts.Default with { Mode = Tls ? TlsMode.Require : TlsMode.Auto, CaFile = TlsCaFile },
        // The servers may start after the service (a compose file, a rolling restart).
        RetryOnInitialConnect = true,
        MaxReconnectRetry = -1,
    };

    /// <summary>The server list with any user:password@ taken out, for logs.</summary>
    public string RedactedUrl => string.Join(",", (Url ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
        .Select(u => Uri.TryCreate(u, UriKind.Absolute, out var uri) && uri.UserInfo.Length > 0 ? u.Replace(uri.UserInfo + "@", "***@", StringComparison.Ordinal) : u));

    /// <summary><paramref name="text"/> (a client error's message, say) with the password and any URL's user info masked.</summary>
    public string Redact(string text)
    {
        foreach (var url in (Url ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.UserInfo.Length > 0)
                text = text.Replace(uri.UserInfo, "***", StringComparison.Ordinal);
        }
        return string.IsNullOrEmpty(Password) ? text : text.Replace(Password, "***", StringComparison.Ordinal);
    }

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var url in (Url ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("nats" or "tls" or "ws" or "wss"))
                yield return new ValidationResult($"Nats:Url names '{new NatsOptions { Url = url }.RedactedUrl}'; give nats://HOST:PORT (or tls://, ws://, wss://), several separated by commas.", [nameof(Url)]);
        }
        if (CredentialsFile is { } file && !File.Exists(file))
            yield return new ValidationResult($"Nats:CredentialsFile '{file}' does not exist.", [nameof(CredentialsFile)]);
        if (TlsCaFile is { } ca && !File.Exists(ca))
            yield return new ValidationResult($"Nats:TlsCaFile '{ca}' does not exist.", [nameof(TlsCaFile)]);
        if (string.IsNullOrEmpty(User) != string.IsNullOrEmpty(Password))
            yield return new ValidationResult("Nats:User and Nats:Password go together; set both or neither.", [nameof(User)]);
        if (string.IsNullOrWhiteSpace(Stream) || Stream.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('_' or '-')))
            yield return new ValidationResult($"Nats:Stream is '{Stream}'; use letters, digits, '_' and '-'.", [nameof(Stream)]);
    }
}
