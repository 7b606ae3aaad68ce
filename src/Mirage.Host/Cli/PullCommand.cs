using System.CommandLine;
using System.Diagnostics;
using Mirage.Core.Models.Sources;

namespace Mirage.Host.Cli;

/// <summary><c>mirage pull ORG/NAME</c>: download a checkpoint into the Hugging Face cache, with a progress line per file.</summary>
internal static class PullCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var repository = new Argument<string>("repository") { Description = "The Hugging Face repository, ORG/NAME." };
        var revision = new Option<string>("--revision") { Description = "Branch, tag or commit.", DefaultValueFactory = _ => "main" };
        var command = new Command("pull", "Download a checkpoint from the Hugging Face hub (HF_ENDPOINT, HF_TOKEN) into its cache (HF_HUB_CACHE, HF_HOME), resuming an interrupted download; "
            + "then --model hf:ORG/NAME loads it offline.")
        {
            repository, revision,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var name = parse.GetRequiredValue(repository);
            var downloader = HuggingFaceDownloader.FromEnvironment();
            await output.WriteLineAsync($"pulling {name} ({parse.GetRequiredValue(revision)}) from {downloader.Endpoint}");
            var snapshot = await downloader.PullAsync(name, parse.GetRequiredValue(revision), new ProgressLine(error), cancellationToken);
            await error.WriteLineAsync();
            await output.WriteLineAsync($"done: {snapshot}");
            await output.WriteLineAsync($"use it with --model hf:{name}{(parse.GetRequiredValue(revision) == "main" ? "" : "@" + parse.GetRequiredValue(revision))}");
            return 0;
        });
        return command;
    }

    // One line per file, redrawn at most a few times a second.
    private sealed class ProgressLine(TextWriter error) : IProgress<DownloadProgress>
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private string? _file;

        public void Report(DownloadProgress value)
        {
            bool done = value.Total == value.Done;
            if (value.File == _file && !done && _clock.ElapsedMilliseconds < 250)
                return;
            if (_file is not null && value.File != _file)
                error.WriteLine();
            _file = value.File;
            _clock.Restart();
            const int width = 30;
            var bar = value.Total is > 0 ? new string('#', (int)(width * value.Done / value.Total.Value)).PadRight(width, '.') : new string('?', width);
            error.Write($"\r{value.File,-40} [{bar}] {value.Done / 1048576.0,8:F1} / {(value.Total is long t ? $"{t / 1048576.0:F1}" : "?")} MiB");
        }
    }
}
