using System.CommandLine;
using System.Diagnostics;
using Mirage.Core.Models.Sources;

namespace Mirage.Host.Cli;

/// <summary><c>mirage pull ORG/NAME</c>: download a checkpoint into the Hugging Face cache, with a progress line per file.</summary>
internal static class PullCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var repository = new Argument<string>("repository") { Description = "The Hugging Face repository, ORG/NAME (hf:ORG/NAME[@REVISION] also works)." };
        var revision = new Option<string>("--revision") { Description = "Branch, tag or commit.", DefaultValueFactory = _ => "main" };
        var noVerify = new Option<bool>("--no-verify") { Description = "Accept files the server gives no sha256 or git blob id for (stored under the sha256 of their bytes)." };
        var maxFileGb = new Option<double>("--max-file-gb") { Description = "The largest file accepted, in GB (10^9 bytes); a larger declared size is refused.", DefaultValueFactory = _ => 128 };
        var command = new Command("pull", "Download a checkpoint from the Hugging Face hub (HF_ENDPOINT, HF_TOKEN) into its cache (HF_HUB_CACHE, HF_HOME), resuming an interrupted download; "
            + "then --model hf:ORG/NAME loads it offline.")
        {
            repository, revision, noVerify, maxFileGb,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            // The reference as --model takes it (hf:ORG/NAME@REV) names the same repository.
            var (name, rev) = (parse.GetRequiredValue(repository), parse.GetRequiredValue(revision));
            if (name.StartsWith("hf:", StringComparison.OrdinalIgnoreCase))
            {
                var reference = ModelReference.Parse(name);
                (name, rev) = (reference.Name, parse.GetResult(revision) is { Implicit: false } ? rev : reference.Tag ?? rev);
            }
            if (!(parse.GetRequiredValue(maxFileGb) is > 0 and var gb && double.IsFinite(gb)))
                throw new Core.MirageException($"--max-file-gb must be a positive number of GB, got {parse.GetRequiredValue(maxFileGb)}.");
            var downloader = HuggingFaceDownloader.FromEnvironment();
            downloader.VerifyFiles = !parse.GetValue(noVerify);
            downloader.MaxFileBytes = (long)Math.Min(parse.GetRequiredValue(maxFileGb) * 1e9, long.MaxValue / 2);
            await output.WriteLineAsync($"pulling {name} ({rev}) from {downloader.Endpoint}");
            var snapshot = await downloader.PullAsync(name, rev, new ProgressLine(error), cancellationToken);
            await error.WriteLineAsync();
            await output.WriteLineAsync($"done: {snapshot}");
            await output.WriteLineAsync($"use it with --model hf:{name}{(rev == "main" ? "" : "@" + rev)}");
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
