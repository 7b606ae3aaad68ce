using System.CommandLine;
using Mirage.Eval.Cli;

var root = new RootCommand("Mirage evaluation: reader data and citation-quality harness")
{
    GenerateCommand.Create(),
    ScoreReaderCommand.Create(),
    RunCommand.Create(Console.Out),
};
return await root.Parse(args).InvokeAsync();
