using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace Mirage.Core.Models.Sources;

/// <summary>Bytes of one file downloaded so far.</summary>
/// <param name="File">The file, as named in the repository.</param>
/// <param name="Done">Bytes on disk (a resumed download starts above 0).</param>
/// <param name="Total">The file's size, when the server says.</param>
public readonly record struct DownloadProgress(string File, long Done, long? Total);

/// <summary>
/// Downloads a checkpoint from the Hugging Face hub (or any server with its <c>resolve/</c> URL
/// layout, named by <c>HF_ENDPOINT</c>) into the hub cache, as <c>huggingface_hub</c> lays it out:
/// each file once, in <c>blobs/ETAG</c>, checked against its ETag (sha256 for LFS files, the git
/// blob id for others), linked from <c>snapshots/COMMIT/NAME</c>, and the revision recorded in
/// <c>refs/</c>. Only the files a loader reads are fetched. An interrupted download resumes from
/// its <c>.incomplete</c> file. <c>HF_TOKEN</c> is sent to the endpoint, never to a redirect's host.
/// </summary>
public sealed class HuggingFaceDownloader
{
    private static readonly string[] OptionalFiles = ["generation_config.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"];
    private const int MaxRedirects = 5;

    private readonly HttpClient _http;
    private readonly HuggingFaceCache _cache;
    private readonly Uri _endpoint;
    private readonly string? _token;

    /// <summary>Creates a downloader; <paramref name="http"/> must not follow redirects itself (the downloader does, keeping the token to the endpoint).</summary>
    public HuggingFaceDownloader(HttpClient http, HuggingFaceCache cache, Uri endpoint, string? token)
    {
        _http = http;
        _cache = cache;
        _endpoint = endpoint;
        _token = token;
    }

    /// <summary>A downloader for the environment: <c>HF_ENDPOINT</c> (default https://huggingface.co), <c>HF_TOKEN</c>, the cache of <see cref="HuggingFaceCache.FromEnvironment"/>.</summary>
    public static HuggingFaceDownloader FromEnvironment() => new(
        new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(20) }) { Timeout = Timeout.InfiniteTimeSpan },
        HuggingFaceCache.FromEnvironment(),
        new Uri((Environment.GetEnvironmentVariable("HF_ENDPOINT") is { Length: > 0 } endpoint ? endpoint : "https://huggingface.co").TrimEnd('/') + "/"),
        Environment.GetEnvironmentVariable("HF_TOKEN") is { Length: > 0 } token ? token : null);

    /// <summary>The endpoint files come from.</summary>
    public Uri Endpoint => _endpoint;

    /// <summary>Downloads <paramref name="repository"/> at <paramref name="revision"/>; returns its snapshot folder.</summary>
    /// <exception cref="MirageException">The server cannot be reached, refuses, lacks a needed file, or sends bytes that fail their check.</exception>
    public async Task<string> PullAsync(string repository, string revision, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var reference = ModelReference.Parse("hf:" + repository + "@" + revision);
        var folder = _cache.RepositoryFolder(reference.Name);
        string? commit = null;

        async Task<bool> Fetch(string file, bool required)
        {
            var info = await HeadAsync(reference.Name, revision, file, required, cancellationToken).ConfigureAwait(false);
            if (info is null)
                return false;
            if (commit is not null && info.Value.Commit != commit)
                throw new MirageException($"The revision '{revision}' of {reference.Name} moved while downloading (commit {commit} then {info.Value.Commit}); run mirage pull again.");
            commit = info.Value.Commit;
            var blob = Path.Combine(folder, "blobs", info.Value.ETag);
            if (!File.Exists(blob))
                await DownloadAsync(info.Value, blob, file, progress, cancellationToken).ConfigureAwait(false);
            Link(Path.Combine(folder, "snapshots", commit, file), blob);
            return true;
        }

        await Fetch("config.json", required: true).ConfigureAwait(false);
        foreach (var file in OptionalFiles)
            await Fetch(file, required: false).ConfigureAwait(false);
        if (!await Fetch("model.safetensors", required: false).ConfigureAwait(false))
        {
            if (!await Fetch("model.safetensors.index.json", required: false).ConfigureAwait(false))
                throw new MirageException($"{reference.Name} at '{revision}' has neither model.safetensors nor model.safetensors.index.json on {_endpoint}: only safetensors checkpoints can be loaded.");
            foreach (var shard in Shards(Path.Combine(folder, "snapshots", commit!, "model.safetensors.index.json")))
                await Fetch(shard, required: true).ConfigureAwait(false);
        }
        if (revision != commit)
        {
            Directory.CreateDirectory(Path.Combine(folder, "refs"));
            File.WriteAllText(Path.Combine(folder, "refs", revision), commit);
        }
        return Path.Combine(folder, "snapshots", commit!);
    }

    private readonly record struct FileInfoOnServer(Uri Url, string Commit, string ETag, long? Size);

    // The file's commit, ETag and size from a HEAD request (redirects not followed: the hub puts
    // the metadata of LFS files on the redirect itself); null for a missing optional file.
    private async Task<FileInfoOnServer?> HeadAsync(string repository, string revision, string file, bool required, CancellationToken cancellationToken)
    {
        var url = new Uri(_endpoint, $"{repository}/resolve/{Uri.EscapeDataString(revision)}/{Uri.EscapeDataString(file)}");
        using var request = Request(HttpMethod.Head, url);
        using var response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound && !required)
            return null;
        Refuse(response, repository, file);
        string? Header(string name) => response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
        var commit = Header("X-Repo-Commit");
        var etag = Normalize(Header("X-Linked-Etag") ?? response.Headers.ETag?.Tag);
        if (commit is null || !HuggingFaceCache.IsCommit(commit) || etag is null)
            throw new MirageException($"{url} did not say which commit and version it serves (X-Repo-Commit, ETag); is {_endpoint} a Hugging Face hub?");
        long? size = long.TryParse(Header("X-Linked-Size"), out var linked) ? linked : response.Content.Headers.ContentLength;
        return new FileInfoOnServer(url, commit.ToLowerInvariant(), etag, size);
    }

    // An ETag as a blob name: without W/ and quotes, and only if it is a plain token.
    private static string? Normalize(string? etag)
    {
        if (etag is null)
            return null;
        var value = etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag;
        value = value.Trim('"');
        return value.Length is > 0 and <= 128 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_') ? value : null;
    }

    private async Task DownloadAsync(FileInfoOnServer info, string blob, string file, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        var partial = blob + ".incomplete";
        long done = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        if (info.Size is long known && done > known)
        {
            File.Delete(partial);
            done = 0;
        }
        if (info.Size != done)
        {
            using var request = Request(HttpMethod.Get, info.Url);
            if (done > 0)
                request.Headers.Range = new RangeHeaderValue(done, null);
            using var response = await SendAsync(request, cancellationToken, followRedirects: true).ConfigureAwait(false);
            Refuse(response, info.Url.ToString(), file);
            // A server that ignores the range sends the whole file again.
            bool append = done > 0 && response.StatusCode == HttpStatusCode.PartialContent;
            done = append ? done : 0;
            await using var output = new FileStream(partial, append ? FileMode.Append : FileMode.Create, FileAccess.Write);
            await using var input = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var buffer = new byte[1 << 16];
            long reported = 0;
            for (int read; (read = await input.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0;)
            {
                await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                done += read;
                if (info.Size is long size && done > size)
                    throw new MirageException($"{info.Url} sent more than its declared {size:N0} bytes; the download was stopped.");
                if (done - reported >= 1 << 20)
                {
                    progress?.Report(new DownloadProgress(file, done, info.Size));
                    reported = done;
                }
            }
        }
        progress?.Report(new DownloadProgress(file, done, info.Size));
        if (info.Size is long expected && done != expected)
            throw new MirageException($"{file}: the download ended at {done:N0} of {expected:N0} bytes; run mirage pull again to resume it.");
        Verify(partial, info.ETag, file);
        File.Move(partial, blob, overwrite: true);
    }

    // LFS files are named by their sha256, other files by their git blob id (sha1 of "blob N\0" + bytes).
    private static void Verify(string path, string etag, string file)
    {
        string? actual = null;
        if (etag.Length == 64 && etag.All(char.IsAsciiHexDigit))
        {
            using var stream = File.OpenRead(path);
            actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        else if (etag.Length == 40 && etag.All(char.IsAsciiHexDigit))
        {
            using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            sha1.AppendData(Encoding.ASCII.GetBytes($"blob {new FileInfo(path).Length}\0"));
            using var stream = File.OpenRead(path);
            var buffer = new byte[1 << 16];
            for (int read; (read = stream.Read(buffer)) > 0;)
                sha1.AppendData(buffer, 0, read);
            actual = Convert.ToHexStringLower(sha1.GetHashAndReset());
        }
        if (actual is not null && actual != etag.ToLowerInvariant())
        {
            File.Delete(path);
            throw new MirageException($"{file}: the downloaded bytes do not match the server's checksum ({etag}, got {actual}); the file was discarded, run mirage pull again.");
        }
    }

    // The shard names of an index, as the loader reads them, and only .safetensors files.
    private static IReadOnlyList<string> Shards(string indexPath)
    {
        var names = CheckpointLoader.ShardNames(indexPath);
        return names.FirstOrDefault(n => !n.EndsWith(".safetensors", StringComparison.Ordinal)) is { } bad
            ? throw new MirageException($"'{indexPath}' names a shard '{bad}' that is not a .safetensors file name.")
            : names;
    }

    private HttpRequestMessage Request(HttpMethod method, Uri url)
    {
        var request = new HttpRequestMessage(method, url);
        request.Headers.UserAgent.ParseAdd("mirage/1.0");
        if (_token is not null && url.Host == _endpoint.Host && url.Port == _endpoint.Port)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        return request;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken, bool followRedirects = false)
    {
        try
        {
            var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            for (int hops = 0; followRedirects && (int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } location; hops++)
            {
                var next = location.IsAbsoluteUri ? location : new Uri(request.RequestUri!, location);
                if (hops == MaxRedirects || next.Scheme is not ("http" or "https"))
                    throw new MirageException($"{request.RequestUri} redirects too often or to a non-HTTP address ({next}).");
                response.Dispose();
                using var again = Request(request.Method, next);
                again.Headers.Range = request.Headers.Range;
                response = await _http.SendAsync(again, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            }
            return response;
        }
        catch (HttpRequestException e)
        {
            throw new MirageException($"Cannot reach {_endpoint} ({e.Message}); mirage pull needs the network, or HF_ENDPOINT naming a reachable mirror.", e);
        }
    }

    private void Refuse(HttpResponseMessage response, string what, string file)
    {
        if (response.IsSuccessStatusCode || (int)response.StatusCode is >= 300 and < 400)
            return;
        throw response.StatusCode switch
        {
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new MirageException(
                $"{_endpoint} refused {what}/{file} ({(int)response.StatusCode}): the repository is gated or private; set HF_TOKEN to a token with access{(_token is null ? "" : " (the one set was refused)")}."),
            HttpStatusCode.NotFound => new MirageException($"{_endpoint} has no {file} for {what} (404): check the repository name and revision."),
            _ => new MirageException($"{_endpoint} answered {(int)response.StatusCode} for {what}/{file}."),
        };
    }

    // snapshots/COMMIT/NAME -> ../../blobs/ETAG, relative as the hub lays it out; a copy where links are not allowed.
    private static void Link(string path, string blob)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (File.Exists(path) || Directory.Exists(path))
            File.Delete(path);
        try
        {
            File.CreateSymbolicLink(path, Path.GetRelativePath(Path.GetDirectoryName(path)!, blob));
        }
        catch (IOException)
        {
            File.Copy(blob, path);
        }
        catch (UnauthorizedAccessException)
        {
            File.Copy(blob, path);
        }
    }
}
