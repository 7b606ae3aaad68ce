using System.CommandLine;
using Mirage.Core;

namespace Mirage.Host.Cli;

/// <summary>The <c>mirage</c> command line: parses arguments, runs a verb, maps errors to exit codes.</summary>
public static class MirageCli
{
    /// <summary>Exit code for bad input or an unusable model (the message says which).</summary>
    public const int UserError = 1;

    /// <summary>Builds the root command with every verb.</summary>
    public static RootCommand CreateRootCommand(TextWriter output, TextWriter error)
    {
        var root = new RootCommand("Mirage: cite which retrieved passage supports each sentence of an LLM answer, from the model's own internals.");
        root.Subcommands.Add(GenerateCommand.Create(output, error));
        root.Subcommands.Add(InspectCommand.Create(output, error));
        root.Subcommands.Add(CiteCommand.Create(output, error));
        root.Subcommands.Add(InspectFlowCommand.Create(output, error));
        root.Subcommands.Add(AskCommand.Create(output, error));
        root.Subcommands.Add(ServeCommand.Create(error));
        root.Subcommands.Add(PullCommand.Create(output, error));
        root.Subcommands.Add(ConvertCommand.Create(output));
        return root;
    }

    /// <summary>Runs the CLI with the given writers; returns the process exit code.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var parse = CreateRootCommand(output, error).Parse(args);
        if (parse.Errors.Count > 0)
        {
            // The first problem and where to read more, not the whole help text.
            var verb = parse.CommandResult.Command is RootCommand ? "" : parse.CommandResult.Command.Name + " ";
            // A mistyped word explains the other errors (a missing verb or option), so it comes first.
            var first = parse.Errors.FirstOrDefault(e => parse.UnmatchedTokens.Any(t => e.Message.Contains($"'{t}'", StringComparison.Ordinal))) ?? parse.Errors[0];
            await error.WriteLineAsync($"error: {first.Message.Replace(":\n\t", ": ").Replace("\n\t", ", ").Replace('\n', ' ')}");
            await error.WriteLineAsync($"Run 'mirage {verb}--help' for usage.");
            return UserError;
        }
        // System.CommandLine ends the process 2 s after SIGTERM, even inside libtorch; the service
        // leaves the signal to its host, which drains in-flight work first.
        var termination = parse.CommandResult.Command.Name == "serve" ? null : new InvocationConfiguration().ProcessTerminationTimeout;
        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = termination }, cancellationToken);
        }
        catch (MirageException e)
        {
            await error.WriteLineAsync($"error: {e.Message}");
            return UserError;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("cancelled");
            return 130;
        }
        catch (Exception e)
        {
            // A fault of Mirage's, not of the input: still one line (MIRAGE_DEBUG=1 adds the stack), never an abort.
            await error.WriteLineAsync($"error: unexpected {e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}"
                + (Environment.GetEnvironmentVariable("MIRAGE_DEBUG") == "1" ? $"\n{e}" : " (set MIRAGE_DEBUG=1 for details)"));
            return UserError;
        }
    }
}
