using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Mirage.Host.Server;
using Mirage.Host.Server.Scaling;

namespace Mirage.Host.Cli;

/// <summary><c>mirage serve</c>: run the HTTP citation service until stopped (Ctrl+C or SIGTERM, both graceful).</summary>
internal static class ServeCommand
{
    public static Command Create(TextWriter error)
    {
        var urls = new Option<string>("--urls") { Description = $"Where to listen (ASP.NET's --urls; default {MirageServer.DefaultUrl}, loopback only)." };
        var model = new Option<string>("--model") { Description = "Model folder, FILE.gguf, hf:ORG/NAME[@REVISION] from the Hugging Face cache or ollama:NAME[:TAG] (default: the embedded reader)." };
        var engine = new Option<string>("--engine") { Description = "auto (llama.cpp for a GGUF file, torch for a folder), torch (every method) or llama.cpp (forward-only methods; weights stay quantized)." };
        engine.AcceptOnlyFromAmong([.. Mirage.Core.Models.ModelEngines.Names]);
        var dtype = new Option<string>("--dtype") { Description = "Compute dtype on the torch engine: auto, float32, bfloat16, float16 or float64." };
        dtype.AcceptOnlyFromAmong([.. Mirage.Core.Models.ComputeOptions.DTypeNames]);
        var role = new Option<string>("--role") { Description = "all (one process, the default), api (HTTP; jobs go to workers over NATS) or worker (runs a model's jobs from NATS)." };
        role.AcceptOnlyFromAmong([.. ServerRoles.Names]);
        var nats = new Option<string>("--nats") { Description = "The NATS servers for --role api and worker, comma-separated (nats://HOST:4222); credentials go in Nats:* settings." };
        var command = new Command("serve", "Run Mirage as an HTTP service: /v1/citations, OpenAI-compatible /v1/chat/completions, /v1/models, /health, and a page at /. "
            + "Other settings as --Server:Name=value (MaxQueueLength, Concurrency, RequestTimeoutSeconds, MaxRequestBodyBytes, MaxPassages, MaxTokens, MaxTokenPasses, Methods:0, PerClientConcurrency, PerClientRequestsPerMinute, ApiKeys:0, LogContent, ShutdownTimeoutSeconds, ServeWithoutModel).")
        {
            urls, model, engine, dtype, role, nats,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(async (parse, cancellationToken) =>
        {
            var args = new List<string>(parse.UnmatchedTokens);
            if (parse.GetValue(urls) is { } url)
                args.Add($"--urls={url}");
            // A folder or file is made absolute (the host's content root is the executable's folder); hf: and ollama: references pass as they are.
            if (parse.GetValue(model) is { } reference)
                args.Add($"--Server:ModelPath={(Directory.Exists(reference) || File.Exists(reference) ? Path.GetFullPath(reference) : reference)}");
            if (parse.GetValue(engine) is { } engineName)
                args.Add($"--Server:Engine={engineName}");
            if (parse.GetValue(dtype) is { } dtypeName)
                args.Add($"--Server:DType={dtypeName}");
            if (parse.GetValue(role) is { } roleName)
                args.Add($"--Server:Role={roleName}");
            if (parse.GetValue(nats) is { } servers)
                args.Add($"--Nats:Url={servers}");
            // A failed start is reported below in one line; the host would log it again with its stack.
            await using var app = MirageServer.Build([.. args], builder => builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical));
            try
            {
                _ = app.Services.GetRequiredService<IOptions<ServerOptions>>().Value;
                await app.StartAsync(cancellationToken);
            }
            catch (Exception e) when (e is OptionsValidationException or IOException or InvalidOperationException or FormatException)
            {
                // An invalid setting, a malformed --urls or a port in use: one line, not the host's stack trace.
                await error.WriteLineAsync($"error: {StartupProblem(e)}");
                return MirageCli.UserError;
            }
            var host = app.Services.GetService<ModelHost>();
            if (host is not null && !app.Services.GetRequiredService<IOptions<ServerOptions>>().Value.ServeWithoutModel && !await host.WaitUntilLoadedAsync(cancellationToken))
            {
                await error.WriteLineAsync($"error: {host.Unavailable} (--Server:ServeWithoutModel=true keeps serving, with /health saying why)");
                await app.StopAsync(CancellationToken.None);
                return MirageCli.UserError;
            }
            // The host's console lifetime turns SIGTERM and Ctrl+C into a graceful stop (MirageCli
            // leaves those signals to it for this verb), bounded by Server:ShutdownTimeoutSeconds.
            await app.WaitForShutdownAsync(CancellationToken.None);
            return 0;
        });
        return command;
    }

    private static string StartupProblem(Exception e) => e switch
    {
        OptionsValidationException invalid => string.Join(" ", invalid.Failures.Select(f => f.Replace("DataAnnotation validation failed for 'ServerOptions' members: ", "Invalid setting ").Replace("DataAnnotation validation failed for 'NatsOptions' members: ", "Invalid setting "))),
        FormatException => $"{e.Message}; --urls takes addresses such as http://127.0.0.1:5088 (several separated by ';').",
        _ => e.Message,
    };
}
