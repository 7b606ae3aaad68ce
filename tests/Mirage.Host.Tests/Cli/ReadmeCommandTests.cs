using System.Text;
using System.Text.RegularExpressions;
using Mirage.Host.Cli;
using Mirage.Tests;

namespace Mirage.Host.Tests.Cli;

/// <summary>
/// Every command in the README's shell blocks runs as written: it is a <c>dotnet</c> command on a
/// project of this repository, and the arguments of the <c>mirage</c> and <c>mirage-eval</c> ones
/// parse without an error, naming files that exist.
/// </summary>
public sealed partial class ReadmeCommandTests
{
    [GeneratedRegex(@"```bash\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex ShellBlock();

    public static TheoryData<string> Commands()
    {
        var readme = File.ReadAllText(Path.Combine(SharedAssets.RepositoryRoot, "README.md"));
        var commands = new TheoryData<string>();
        foreach (Match block in ShellBlock().Matches(readme))
        foreach (var line in block.Groups[1].Value.Split('\n'))
            if (line.Trim().Length > 0 && !line.TrimStart().StartsWith('#'))
                commands.Add(line.Trim());
        return commands;
    }

    [Fact]
    public void TheReadme_ShowsItsTwoCommands()
    {
        var commands = Commands().Select(c => c.Data).ToList();
        Assert.Contains("dotnet test", commands);
        Assert.Contains(commands, c => c.StartsWith("dotnet run --project src/Mirage.Host -c Release -- ask ", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void EveryShellCommand_RunsAsWritten(string command)
    {
        var words = ShellWords(command);
        Assert.Equal("dotnet", words[0]);
        if (words[1] == "test")
            return;
        Assert.Equal("run", words[1]);
        int separator = words.IndexOf("--");
        var dotnetArgs = separator < 0 ? words[2..] : words[2..separator];
        var project = dotnetArgs[dotnetArgs.IndexOf("--project") + 1];
        Assert.True(Directory.Exists(Path.Combine(SharedAssets.RepositoryRoot, project)), $"no project {project}");
        var args = separator < 0 ? [] : words[(separator + 1)..].ToArray();

        System.CommandLine.ParseResult? parse = project switch
        {
            "src/Mirage.Host" => MirageCli.CreateRootCommand(TextWriter.Null, TextWriter.Null).Parse(args),
            "eval/Mirage.Eval" => Mirage.Eval.Cli.EvalCli.CreateRootCommand(TextWriter.Null).Parse(args),
            "benchmarks/Mirage.Benchmarks" or "samples/SemanticKernelRag" => null,
            _ => throw new Xunit.Sdk.XunitException($"The README runs a project no test checks: {project}"),
        };
        if (parse is null)
            return;
        Assert.Empty(parse.Errors.Select(e => e.Message));
        foreach (var option in new[] { "--passages", "--model" })
        {
            int at = Array.IndexOf(args, option);
            // A folder or file must exist; a hub or Ollama reference names a cache entry (see pull).
            if (at >= 0 && project == "src/Mirage.Host" && Mirage.Core.Models.Sources.ModelReference.Parse(args[at + 1]).Kind == Mirage.Core.Models.Sources.ModelSourceKind.Folder)
                Assert.True(File.Exists(Path.Combine(SharedAssets.RepositoryRoot, args[at + 1])) || Directory.Exists(Path.Combine(SharedAssets.RepositoryRoot, args[at + 1])), $"{option} {args[at + 1]} does not exist");
        }
    }

    // Words as a POSIX shell splits them: single quotes literal, double quotes with \" escapes.
    private static List<string> ShellWords(string line)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (c == '\'')
            {
                int end = line.IndexOf('\'', i + 1);
                word.Append(line, i + 1, end - i - 1);
                i = end;
                inWord = true;
            }
            else if (c == '"')
            {
                for (i++; line[i] != '"'; i++)
                    word.Append(line[i] == '\\' && line[i + 1] is '"' or '\\' or '$' ? line[++i] : line[i]);
                inWord = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                    words.Add(word.ToString());
                word.Clear();
                inWord = false;
            }
            else
            {
                Assert.False(c is '|' or '[' or ']' or '<' or '>' or ';' or '&', $"'{c}' in a README command: a shell would not run it as the text means");
                word.Append(c);
                inWord = true;
            }
        }
        if (inWord)
            words.Add(word.ToString());
        return words;
    }
}
