using System.CommandLine;

namespace Mirage.Eval.Cli;

/// <summary>The <c>mirage-eval</c> command line: reader data, reader scoring and the citation harness.</summary>
public static class EvalCli
{
    /// <summary>How a newcomer runs it from the repository root; reports print their commands in this form.</summary>
    public const string Invocation = "dotnet run --project eval/Mirage.Eval -c Release --";

    /// <summary>Builds the root command with every verb.</summary>
    public static RootCommand CreateRootCommand(TextWriter output) => new("Mirage evaluation: reader data, the citation-quality harness, and training the reader")
    {
        GenerateCommand.Create(),
        ScoreReaderCommand.Create(),
        RunCommand.Create(output),
        ProbeAttentionCommand.Create(output),
        TrainReaderCommand.Create(output),
    };
}
