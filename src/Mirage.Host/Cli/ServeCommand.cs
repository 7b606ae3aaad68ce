using System.CommandLine;
using Microsoft.Extensions.Hosting;
using Mirage.Host.Server;

namespace Mirage.Host.Cli;

/// <summary><c>mirage serve</c>: run the HTTP citation service until stopped (Ctrl+C).</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var urls = new Option<string>("--urls") { Description = $"Where to listen (ASP.NET's --urls; default {MirageServer.DefaultUrl}, loopback only)." };
        var model = new Option<string>("--model") { Description = "Model folder (default: the embedded reader)." };
        var command = new Command("serve", "Run Mirage as an HTTP service: /v1/citations, OpenAI-compatible /v1/chat/completions, /v1/models, /health, and a page at /. "
            + "Other settings as --Server:Name=value (MaxQueueLength, Concurrency, RequestTimeoutSeconds, MaxRequestBodyBytes, MaxPassages, MaxTokens, ApiKeys:0, LogContent, ShutdownTimeoutSeconds).")
        {
            urls, model,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(async (parse, cancellationToken) =>
        {
            var args = new List<string>(parse.UnmatchedTokens);
            if (parse.GetValue(urls) is { } url)
                args.Add($"--urls={url}");
            if (parse.GetValue(model) is { } directory)
                args.Add($"--Server:ModelPath={Path.GetFullPath(directory)}");
            await using var app = MirageServer.Build([.. args]);
            await app.StartAsync(cancellationToken);
            await app.WaitForShutdownAsync(cancellationToken);
            return 0;
        });
        return command;
    }
}
