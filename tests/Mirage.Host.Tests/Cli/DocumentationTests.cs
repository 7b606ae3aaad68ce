using System.Text;
using System.Text.RegularExpressions;
using Mirage.Host.Cli;
using Mirage.Tests;

namespace Mirage.Host.Tests.Cli;

/// <summary>
/// The README and docs/ hold up as written: every shell command is a <c>dotnet</c> command on a
/// project of this repository whose arguments parse and name files that exist, the short ones run
/// for real, every relative link resolves (anchors included), and the quick start prints what the
/// README shows.
/// </summary>
public sealed partial class DocumentationTests
{
    [GeneratedRegex(@"```bash\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex ShellBlock();

    [GeneratedRegex(@"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")]
    private static partial Regex MarkdownLink();

    [GeneratedRegex(@"```\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex PlainBlock();

    private static IEnumerable<string> Documents() =>
        [Path.Combine(SharedAssets.RepositoryRoot, "README.md"), .. Directory.GetFiles(Path.Combine(SharedAssets.RepositoryRoot, "docs"), "*.md").Order(StringComparer.Ordinal)];

    public static TheoryData<string> Commands()
    {
        var commands = new TheoryData<string>();
        foreach (var document in Documents())
        foreach (Match block in ShellBlock().Matches(File.ReadAllText(document)))
        foreach (var line in block.Groups[1].Value.Split('\n'))
            if (line.Trim().Length > 0 && !line.TrimStart().StartsWith('#'))
                commands.Add(line.Trim());
        return commands;
    }

    [Fact]
    public void EveryRelativeLink_Resolves_AnchorsIncluded()
    {
        var broken = new List<string>();
        foreach (var document in Documents())
        {
            var text = File.ReadAllText(document);
            foreach (Match link in MarkdownLink().Matches(text))
            {
                var target = link.Groups[1].Value;
                if (target.StartsWith("http://", StringComparison.Ordinal) || target.StartsWith("https://", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal))
                    continue;
                var (path, anchor) = target.IndexOf('#') is var hash and >= 0 ? (target[..hash], target[(hash + 1)..]) : (target, null);
                var file = path.Length == 0 ? document : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(document)!, path));
                if (!File.Exists(file) && !Directory.Exists(file))
                    broken.Add($"{Path.GetFileName(document)}: {target} (no such file)");
                else if (anchor is not null && file.EndsWith(".md", StringComparison.Ordinal) && !Anchors(File.ReadAllText(file)).Contains(anchor))
                    broken.Add($"{Path.GetFileName(document)}: {target} (no such heading)");
            }
        }
        Assert.Empty(broken);
    }

    // GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens.
    private static HashSet<string> Anchors(string markdown) =>
        markdown.Split('\n').Where(l => l.StartsWith('#')).Select(l => new string(l.TrimStart('#').Trim().ToLowerInvariant()
            .Where(c => char.IsLetterOrDigit(c) || c is ' ' or '-' or '_').ToArray()).Replace(' ', '-')).ToHashSet();

    [Fact]
    public async Task TheQuickStart_PrintsWhatTheReadmeShows()
    {
        var readme = File.ReadAllText(Path.Combine(SharedAssets.RepositoryRoot, "README.md"));
        var ask = Commands().Select(c => c.Data).First(c => c.Contains(" -- ask ", StringComparison.Ordinal));
        var shown = PlainBlock().Match(readme[readme.IndexOf("The first prints", StringComparison.Ordinal)..]).Groups[1].Value;
        var (exitCode, output, _) = await CliRunner.RunAsync(MirageArguments(ask));
        Assert.Equal(0, exitCode);
        Assert.Equal(shown.Trim(), output.Trim());
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public async Task ShortMirageCommands_RunForReal(string command)
    {
        var args = MirageArguments(command);
        // The network (pull, and the models it fetches), a service that runs until stopped, and
        // training are left to their own tests.
        int model = Array.IndexOf(args, "--model");
        if (args.Length == 0 || args[0] is not ("ask" or "cite" or "inspect" or "convert")
            || model >= 0 && Mirage.Core.Models.Sources.ModelReference.Parse(args[model + 1]).Kind is Mirage.Core.Models.Sources.ModelSourceKind.HuggingFace or Mirage.Core.Models.Sources.ModelSourceKind.Ollama)
            return;
        // A model another command writes (convert, then ask on its output) is written first.
        if (model >= 0 && !Path.Exists(args[model + 1])
            && Commands().Select(c => MirageArguments(c.Data)).FirstOrDefault(a => a.Length > 0 && a[0] == "convert" && a.SkipWhile(w => w != "--out").Skip(1).FirstOrDefault() == args[model + 1]) is { } producer)
            Assert.Equal(0, (await CliRunner.RunAsync(producer)).ExitCode);
        var (exitCode, _, error) = await CliRunner.RunAsync(args);
        Assert.True(exitCode == 0, error);
    }

    // The arguments after "--" of a `dotnet run --project src/Mirage.Host` command, with paths in
    // the repository made absolute (the tests do not run from the repository root).
    private static string[] MirageArguments(string command)
    {
        var words = ShellWords(command);
        int separator = words.IndexOf("--");
        if (words.Count < 4 || words[1] != "run" || !words.Contains("src/Mirage.Host") || separator < 0)
            return [];
        return words[(separator + 1)..].Select(w => !w.StartsWith('-') && !Path.IsPathRooted(w) && Path.Exists(RepositoryPath(w)) ? RepositoryPath(w) : w).ToArray();
    }

    // A path as the docs write it, from the repository root. One into ../shared skips the test
    // where the shared folder is absent (a user's clone), as every test that needs it does.
    private static string RepositoryPath(string path) =>
        path.StartsWith("../shared/", StringComparison.Ordinal) ? Path.Combine(SharedAssets.Require(), path["../shared/".Length..]) : Path.Combine(SharedAssets.RepositoryRoot, path);

    [Fact]
    public void TheReadme_ShowsItsTwoCommands()
    {
        var readme = File.ReadAllText(Path.Combine(SharedAssets.RepositoryRoot, "README.md"));
        var commands = ShellBlock().Matches(readme).SelectMany(b => b.Groups[1].Value.Split('\n')).Select(l => l.Trim()).ToList();
        Assert.Contains("dotnet test", commands);
        Assert.Contains(commands, c => c.StartsWith("dotnet run --project src/Mirage.Host -c Release -- ask ", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void EveryShellCommand_ParsesAndNamesFilesThatExist(string command)
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
                Assert.True(Path.Exists(RepositoryPath(args[at + 1])), $"{option} {args[at + 1]} does not exist");
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
