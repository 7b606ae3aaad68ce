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
/// each file once, in <c>blobs/HASH</c>, checked against its ETag (sha256 for LFS files, the git
/// blob id for others), linked from <c>snapshots/COMMIT/NAME</c>, and the revision recorded in
/// <c>refs/</c>. Only the files a loader reads are fetched. An interrupted download resumes from
/// its <c>.incomplete</c> file. <c>HF_TOKEN</c> is sent to the endpoint, never to a redirect's host.
/// The server is not trusted: a file that cannot be verified is refused (unless
/// <see cref="VerifyFiles"/> is off), no file grows past its declared size or <see cref="MaxFileBytes"/>,
/// and a server that stalls or trickles is dropped after <see cref="StallTimeout"/>.
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
    /// <exception cref="MirageException"><c>HF_ENDPOINT</c> is not an http(s) URL, or the cache folder is a file.</exception>
    public static HuggingFaceDownloader FromEnvironment()
    {
        var endpoint = Environment.GetEnvironmentVariable("HF_ENDPOINT") is { Length: > 0 } set ? set : "https://huggingface.co";
        if (!Uri.TryCreate(endpoint.TrimEnd('/') + "/", UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            throw new MirageException($"HF_ENDPOINT '{endpoint}' is not an http:// or https:// URL; unset it to use https://huggingface.co.");
        var cache = HuggingFaceCache.FromEnvironment();
        if (File.Exists(cache.Root))
            throw new MirageException($"The Hugging Face cache '{cache.Root}' is a file, not a folder; point HF_HUB_CACHE (or HF_HOME) at a folder.");
        return new HuggingFaceDownloader(
            new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(20) }) { Timeout = Timeout.InfiniteTimeSpan },
            cache, url, Environment.GetEnvironmentVariable("HF_TOKEN") is { Length: > 0 } token ? token : null);
    }

    /// <summary>The endpoint files come from.</summary>
    public Uri Endpoint => _endpoint;

    /// <summary>A server that sends no headers, or less than <see cref="StallBytes"/> of a file, within this time is dropped (default 60 s).</summary>
    public TimeSpan StallTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The least a download must bring per <see cref="StallTimeout"/> (1 KiB): a trickle is a stall.</summary>
    public const int StallBytes = 1024;

    /// <summary>The largest file accepted (default 128 GiB): a declared size above it is refused, and a file without one stops there.</summary>
    public long MaxFileBytes { get; set; } = 128L << 30;

    /// <summary>
    /// Whether every file must match a hash the server gives (default true). Off, a file whose ETag
    /// is not a sha256 or git blob id is accepted unchecked and stored under the sha256 of its bytes.
    /// </summary>
    public bool VerifyFiles { get; set; } = true;

    /// <summary>Downloads <paramref name="repository"/> at <paramref name="revision"/>; returns its snapshot folder.</summary>
    /// <exception cref="MirageException">The server cannot be reached, refuses, lacks a needed file, or sends bytes that fail their check.</exception>
    public async Task<string> PullAsync(string repository, string revision, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var reference = ModelReference.Parse("hf:" + repository + "@" + revision);
        var folder = _cache.RepositoryFolder(reference.Name);
        string? commit = null;
        // Every folder written below is a plain folder inside the repository's: a planted link to a
        // folder elsewhere would carry the writes out of the cache.
        void RefuseLinks(string directory)
        {
            for (var at = directory; at is not null && at.Length >= folder.Length; at = Path.GetDirectoryName(at))
                if (new DirectoryInfo(at).LinkTarget is { } target)
                    throw new MirageException($"'{at}' in the Hugging Face cache is a link (to {target}); mirage pull writes only into plain folders of the cache. Remove the link and pull again.");
        }

        async Task<bool> Fetch(string file, bool required)
        {
            var info = await HeadAsync(reference.Name, revision, file, required, cancellationToken).ConfigureAwait(false);
            if (info is null)
                return false;
            if (commit is not null && info.Value.Commit != commit)
                throw new MirageException($"The revision '{revision}' of {reference.Name} moved while downloading (commit {commit} then {info.Value.Commit}); run mirage pull again.");
            commit = info.Value.Commit;
            RefuseLinks(Path.Combine(folder, "blobs"));
            RefuseLinks(Path.GetDirectoryName(Path.Combine(folder, "snapshots", commit, file))!);
            var blob = info.Value.Hash is { } hash ? Path.Combine(folder, "blobs", hash) : null;
            if (blob is null || !ModelFiles.IsRegularFile(blob, followLinks: false))
                blob = await DownloadAsync(info.Value, Path.Combine(folder, "blobs"), file, progress, cancellationToken).ConfigureAwait(false);
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
            RefuseLinks(Path.GetDirectoryName(Path.Combine(folder, "refs", revision))!);
            ModelFiles.Replace(Path.Combine(folder, "refs", revision), commit!);
        }
        return Path.Combine(folder, "snapshots", commit!);
    }

    // Hash: the sha256 or git blob id the bytes must match (null when the server gave neither and
    // verification is off).
    private readonly record struct FileInfoOnServer(Uri Url, string Commit, string? Hash, long? Size);

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
        if (commit is null || !HuggingFaceCache.IsCommit(commit))
            throw new MirageException($"{url} did not say which commit it serves (X-Repo-Commit); is {_endpoint} a Hugging Face hub?");
        var etag = Header("X-Linked-Etag") ?? response.Headers.ETag?.Tag;
        var hash = AsHash(etag);
        if (hash is null && VerifyFiles)
            throw new MirageException($"{file} cannot be verified: {url} gave {(etag is null ? "no ETag" : $"the ETag {etag}")}, not a sha256 or git blob id; pass --no-verify to accept unverified files.");
        long? size = long.TryParse(Header("X-Linked-Size"), out var linked) ? linked : response.Content.Headers.ContentLength;
        if (size is < 0 || size > MaxFileBytes)
            throw new MirageException($"{file} is {size:N0} bytes by {url}'s account, over the limit of {MaxFileBytes:N0}; raise it with --max-file-gb if that is right.");
        return new FileInfoOnServer(url, commit.ToLowerInvariant(), hash, size);
    }

    // An ETag that names the content: a sha256 (LFS files) or a git blob id (others), in lower case.
    private static string? AsHash(string? etag)
    {
        if (etag is null)
            return null;
        var value = (etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag).Trim('"');
        return value.Length is 40 or 64 && value.All(char.IsAsciiHexDigit) ? value.ToLowerInvariant() : null;
    }

    // Downloads into blobs/ and returns the blob: named by its verified hash, or by the sha256 of
    // its bytes when it could not be verified.
    private async Task<string> DownloadAsync(FileInfoOnServer info, string blobs, string file, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(blobs);
        var partial = Path.Combine(blobs, (info.Hash ?? "unverified-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(info.Url.ToString())))[..16]) + ".incomplete");
        // A planted link would have the download written through it, outside the cache.
        if (File.Exists(partial) && !ModelFiles.IsRegularFile(partial, followLinks: false))
            File.Delete(partial);
        long done = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        long limit = info.Size ?? MaxFileBytes;
        if (done > limit)
        {
            File.Delete(partial);
            done = 0;
        }
        if (info.Size != done)
            done = await ReceiveAsync(info, partial, file, done, limit, progress, cancellationToken).ConfigureAwait(false);
        progress?.Report(new DownloadProgress(file, done, info.Size));
        if (info.Size is long expected && done != expected)
            throw new MirageException($"{file}: the download ended at {done:N0} of {expected:N0} bytes; run mirage pull again to resume it.");
        var blob = Path.Combine(blobs, info.Hash is { } hash ? Verify(partial, hash, file) : Hash(partial, SHA256.Create(), prefix: null));
        File.Move(partial, blob, overwrite: true);
        return blob;
    }

    // Appends the response body to `partial` from byte `done` on; returns the bytes it then holds.
    private async Task<long> ReceiveAsync(FileInfoOnServer info, string partial, string file, long done, long limit, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        using var request = Request(HttpMethod.Get, info.Url);
        if (done > 0)
            request.Headers.Range = new RangeHeaderValue(done, null);
        using var response = await SendAsync(request, cancellationToken, followRedirects: true).ConfigureAwait(false);
        Refuse(response, info.Url.ToString(), file);
        if ((int)response.StatusCode is >= 300 and < 400)
            throw new MirageException($"{info.Url} answered {(int)response.StatusCode} for {file} without saying where to (no Location); nothing was written.");
        // A server that ignores the range sends the whole file again.
        bool append = done > 0 && response.StatusCode == HttpStatusCode.PartialContent;
        done = append ? done : 0;
        await using var output = new FileStream(partial, append ? FileMode.Append : FileMode.Create, FileAccess.Write);
        using var stalled = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stalled.CancelAfter(StallTimeout);
        var buffer = new byte[1 << 16];
        long reported = 0, sinceProgress = 0;
        try
        {
            await using var input = await response.Content.ReadAsStreamAsync(stalled.Token).ConfigureAwait(false);
            for (int read; (read = await input.ReadAsync(buffer, stalled.Token).ConfigureAwait(false)) > 0;)
            {
                if (done + read > limit)
                    throw new MirageException(info.Size is { } size
                        ? $"{info.Url} sent more than its declared {size:N0} bytes; the download was stopped."
                        : $"{info.Url} declared no size and sent more than {MaxFileBytes:N0} bytes; the download was stopped (raise the limit with --max-file-gb if that is right).");
                await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                done += read;
                // Enough bytes arrived in time: the stall clock starts again.
                if ((sinceProgress += read) >= StallBytes)
                {
                    stalled.CancelAfter(StallTimeout);
                    sinceProgress = 0;
                }
                if (done - reported >= 1 << 20)
                {
                    progress?.Report(new DownloadProgress(file, done, info.Size));
                    reported = done;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new MirageException($"{info.Url} sent less than {StallBytes:N0} bytes of {file} in {StallTimeout.TotalSeconds:0.#} s; the download was stopped at {done:N0} bytes, run mirage pull again to resume it.");
        }
        catch (IOException e) when (e is HttpIOException || e.InnerException is System.Net.Sockets.SocketException)
        {
            throw new MirageException($"The connection broke while downloading {file} ({e.Message}) at {done:N0} bytes; run mirage pull again to resume it.", e);
        }
        return done;
    }

    // LFS files are named by their sha256, other files by their git blob id (sha1 of "blob N\0" + bytes).
    private static string Verify(string path, string expected, string file)
    {
        var actual = expected.Length == 64
            ? Hash(path, SHA256.Create(), prefix: null)
            : Hash(path, SHA1.Create(), prefix: Encoding.ASCII.GetBytes($"blob {new FileInfo(path).Length}\0"));
        if (actual != expected)
        {
            File.Delete(path);
            throw new MirageException($"{file}: the downloaded bytes do not match the server's checksum ({expected}, got {actual}); the file was discarded, run mirage pull again.");
        }
        return actual;
    }

    private static string Hash(string path, HashAlgorithm algorithm, byte[]? prefix)
    {
        using (algorithm)
        {
            if (prefix is not null)
                algorithm.TransformBlock(prefix, 0, prefix.Length, null, 0);
            using var stream = File.OpenRead(path);
            var buffer = new byte[1 << 16];
            for (int read; (read = stream.Read(buffer)) > 0;)
                algorithm.TransformBlock(buffer, 0, read, null, 0);
            algorithm.TransformFinalBlock([], 0, 0);
            return Convert.ToHexStringLower(algorithm.Hash!);
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

    // Sends and waits for the headers at most StallTimeout (redirects followed for GETs).
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken, bool followRedirects = false)
    {
        using var stalled = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stalled.CancelAfter(StallTimeout);
        try
        {
            var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stalled.Token).ConfigureAwait(false);
            for (int hops = 0; followRedirects && (int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } location; hops++)
            {
                var next = location.IsAbsoluteUri ? location : new Uri(request.RequestUri!, location);
                if (hops == MaxRedirects || next.Scheme is not ("http" or "https"))
                    throw new MirageException($"{request.RequestUri} redirects too often or to a non-HTTP address ({next}).");
                response.Dispose();
                using var again = Request(request.Method, next);
                again.Headers.Range = request.Headers.Range;
                response = await _http.SendAsync(again, HttpCompletionOption.ResponseHeadersRead, stalled.Token).ConfigureAwait(false);
            }
            return response;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new MirageException($"{request.RequestUri} sent no answer in {StallTimeout.TotalSeconds:0.#} s; run mirage pull again later, or check HF_ENDPOINT.");
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
