using System.ComponentModel.DataAnnotations;

namespace Mirage.Host.Server;

/// <summary>Settings of <c>mirage serve</c>, from the <c>Server</c> section (appsettings, environment, command line); validated on start.</summary>
public sealed class ServerOptions : IValidatableObject
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Server";

    /// <summary>
    /// <c>all</c> (one process, the default), <c>api</c> or <c>worker</c> (several processes sharing
    /// jobs over NATS JetStream; both need <c>Nats:Url</c>). See <see cref="Scaling.ServerRoles"/>.
    /// </summary>
    public string Role { get; set; } = Scaling.ServerRoles.All;

    /// <summary>The model: a folder, a GGUF file, hf:ORG/NAME or ollama:NAME (see <c>--model</c>); null: the embedded reader.</summary>
    public string? ModelPath { get; set; }

    /// <summary>
    /// What runs the model: <c>auto</c> (llama.cpp for a GGUF file, whose weights then stay quantized;
    /// TorchSharp for a folder), <c>torch</c> (every method, gradients included) or <c>llama.cpp</c>.
    /// On llama.cpp, requests for gradient methods are refused with 400.
    /// </summary>
    public string Engine { get; set; } = "auto";

    /// <summary>The torch engine's compute dtype: auto (by the CPU and the model's size), float32, bfloat16, float16 (GPU) or float64.</summary>
    public string DType { get; set; } = "auto";

    /// <summary>Requests waiting for the model at most; beyond that, 429 with Retry-After.</summary>
    [Range(1, 100_000)]
    public int MaxQueueLength { get; set; } = 64;

    /// <summary>Requests worked on at once (each model call is still serialised per model).</summary>
    [Range(1, 64)]
    public int Concurrency { get; set; } = 1;

    /// <summary>
    /// Waiting requests a worker takes at a time; the citation requests among them share one batch
    /// (their teacher-forced passes run together). 1, the default, turns batching off: on a CPU the
    /// passes are compute-bound and padding only adds work; on a GPU a batch costs about one pass.
    /// </summary>
    [Range(1, 256)]
    public int BatchSize { get; set; } = 1;

    /// <summary>Longest a request may take, queueing included; then 504.</summary>
    [Range(0.001, 3600)]
    public double RequestTimeoutSeconds { get; set; } = 120;

    /// <summary>Largest request body; larger ones get 413.</summary>
    [Range(1024, 1L << 30)]
    public long MaxRequestBodyBytes { get; set; } = 1 << 20;

    /// <summary>Most passages per request.</summary>
    [Range(1, 1000)]
    public int MaxPassages { get; set; } = 20;

    /// <summary>Most tokens a chat completion may generate.</summary>
    [Range(1, 100_000)]
    public int MaxTokens { get; set; } = 512;

    /// <summary>Accepted API keys (<c>Authorization: Bearer KEY</c>); empty: no authentication. An empty or blank key is refused at start (an unset secret must not turn authentication off).</summary>
    public List<string> ApiKeys { get; set; } = [];

    /// <summary>Keep serving when the model cannot load (<c>/health</c> answers 503 saying why); off: start-up fails.</summary>
    public bool ServeWithoutModel { get; set; }

    /// <summary>Log request and response content (off: only sizes, statuses and timings are logged).</summary>
    public bool LogContent { get; set; }

    /// <summary>On shutdown, in-flight work may finish within this many seconds; then it is cancelled.</summary>
    [Range(0, 600)]
    public double ShutdownTimeoutSeconds { get; set; } = 10;

    /// <summary>
    /// One request's bound on model work, in token-passes (a token through one forward pass; a
    /// backward pass counts twice), checked before that work starts; over it, 400 naming the budget.
    /// The default fits passage ablation on a full 1,024-token context with 20 passages; integrated
    /// gradients over every answer token of a long answer is past it.
    /// </summary>
    [Range(1, long.MaxValue)]
    public long MaxTokenPasses { get; set; } = 1_000_000;

    /// <summary>The citation methods requests may ask for (empty: all of them); others get 400.</summary>
    public List<string> Methods { get; set; } = [];

    /// <summary>Requests one client (its API key, or its address without keys) may have in the queue or running at once; 0: no limit beyond the queue's.</summary>
    [Range(0, 100_000)]
    public int PerClientConcurrency { get; set; }

    /// <summary>Requests one client may start per minute; 0: no limit.</summary>
    [Range(0, 1_000_000)]
    public int PerClientRequestsPerMinute { get; set; }

    /// <summary>How long a finished asynchronous citation job (<c>/v1/citations/jobs</c>) keeps its result.</summary>
    [Range(1, 7 * 24 * 3600)]
    public double JobResultSeconds { get; set; } = 3600;

    /// <summary>Seconds a client told 429 should wait.</summary>
    [Range(1, 3600)]
    public int RetryAfterSeconds { get; set; } = 1;

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Scaling.ServerRoles.Names.Contains(Role))
            yield return new ValidationResult($"Server:Role is '{Role}'; choose one of {string.Join(", ", Scaling.ServerRoles.Names)}.", [nameof(Role)]);
        if (!Mirage.Core.Models.ModelEngines.Names.Contains(Engine.ToLowerInvariant()))
            yield return new ValidationResult($"Server:Engine is '{Engine}'; choose one of {string.Join(", ", Mirage.Core.Models.ModelEngines.Names)}.", [nameof(Engine)]);
        if (!Mirage.Core.Models.ComputeOptions.DTypeNames.Contains(DType.ToLowerInvariant()))
            yield return new ValidationResult($"Server:DType is '{DType}'; choose one of {string.Join(", ", Mirage.Core.Models.ComputeOptions.DTypeNames)}.", [nameof(DType)]);
        foreach (var method in Methods.Where(m => !Mirage.Core.Citations.CitationOptions.MethodNames.Contains(m)))
            yield return new ValidationResult($"Server:Methods names '{method}'; the methods are {string.Join(", ", Mirage.Core.Citations.CitationOptions.MethodNames)}.", [nameof(Methods)]);
        if (Methods.Count > 0 && !Methods.Contains(new Mirage.Core.Citations.CitationOptions().MethodName))
            yield return new ValidationResult($"Server:Methods leaves out '{new Mirage.Core.Citations.CitationOptions().MethodName}', the method a request gets when it names none; include it.", [nameof(Methods)]);
        for (int i = 0; i < ApiKeys.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(ApiKeys[i]))
                yield return new ValidationResult($"Server:ApiKeys:{i} is empty or blank; set a real key, or remove it to serve without authentication.", [nameof(ApiKeys)]);
            else if (ApiKeys[i] != ApiKeys[i].Trim())
                yield return new ValidationResult($"Server:ApiKeys:{i} starts or ends with whitespace, so no client could send it; remove the whitespace.", [nameof(ApiKeys)]);
        }
    }
}
