using Mirage.Host.Cli;

return await MirageCli.RunAsync(args, Console.Out, Console.Error);
