using Mirage.Eval.Cli;

return await EvalCli.CreateRootCommand(Console.Out).Parse(args).InvokeAsync();
