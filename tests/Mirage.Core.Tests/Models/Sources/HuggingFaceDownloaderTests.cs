using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Mirage.Core.Models;
using Mirage.Core.Models.Sources;
using Mirage.Tests;

namespace Mirage.Core.Tests.Models.Sources;

/// <summary><c>mirage pull</c>'s downloader against a hub served on 127.0.0.1 in the hub's <c>resolve/</c> layout.</summary>
[Collection(nameof(EnvironmentVariables))]
public sealed class HuggingFaceDownloaderTests : IDisposable
{
    private const string Commit = "89abcdef0123456789abcdef0123456789abcdef";
    private static readonly CancellationToken Token = TestContext.Current.CancellationToken;
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private HuggingFaceDownloader Downloader(LoopbackHub hub, string? token = null) =>
        new(new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }), new HuggingFaceCache(Path.Combine(_temp.Path, "hub")), hub.Endpoint, token);

    [Fact]
    public async Task Pull_LaysOutTheCacheAsTheHubDoes_AndTheModelLoadsOfflineByName()
    {
        var original = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config(), new RandomCheckpointOptions { Shards = 2 });
        using var hub = new LoopbackHub("tiny-org/tiny-model", original);
        var progress = new ConcurrentQueue<DownloadProgress>();
        var snapshot = await Downloader(hub, token: "secret").PullAsync("tiny-org/tiny-model", "main", new Progress(progress), Token);

        Assert.Equal(Path.Combine(_temp.Path, "hub", "models--tiny-org--tiny-model", "snapshots", Commit), snapshot);
        Assert.Equal(Commit, File.ReadAllText(Path.Combine(_temp.Path, "hub", "models--tiny-org--tiny-model", "refs", "main")));
        // Only what a loader reads, each file a link into blobs/ named by its ETag.
        Assert.Equal(Directory.GetFiles(original).Select(Path.GetFileName).Order(), Directory.GetFiles(snapshot).Select(Path.GetFileName).Order());
        foreach (var file in Directory.GetFiles(snapshot))
            Assert.StartsWith(Path.Combine("..", "..", "blobs"), new FileInfo(file).LinkTarget);
        Assert.DoesNotContain(hub.Requests, r => r.Path.EndsWith("README.md", StringComparison.Ordinal));
        Assert.All(hub.Requests, r => Assert.Equal("Bearer secret", r.Authorization));
        Assert.Contains(progress, p => p.File == "model-00001-of-00002.safetensors" && p.Done == p.Total);

        using var _ = EnvironmentVariables.Set("HF_HUB_CACHE", Path.Combine(_temp.Path, "hub"));
        using var pulled = TinyCheckpoint.Load("hf:tiny-org/tiny-model");
        using var direct = TinyCheckpoint.Load(original);
        var ids = TinyCheckpoint.RandomIds(8, 2);
        Assert.Equal(0, TinyCheckpoint.MaxDifference(TinyCheckpoint.Logits(direct, ids), TinyCheckpoint.Logits(pulled, ids)));

        // Pulled again: nothing is downloaded twice.
        int gets = hub.Requests.Count(r => r.Method == "GET");
        await Downloader(hub).PullAsync("tiny-org/tiny-model", "main", null, Token);
        Assert.Equal(gets, hub.Requests.Count(r => r.Method == "GET"));
    }

    [Fact]
    public async Task AnInterruptedDownload_Resumes_WithARangeRequest()
    {
        var original = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config());
        using var hub = new LoopbackHub("tiny-org/tiny-model", original);
        var weights = File.ReadAllBytes(Path.Combine(original, "model.safetensors"));
        var blobs = Directory.CreateDirectory(Path.Combine(_temp.Path, "hub", "models--tiny-org--tiny-model", "blobs")).FullName;
        File.WriteAllBytes(Path.Combine(blobs, LoopbackHub.Sha256(weights) + ".incomplete"), weights[..(weights.Length / 2)]);

        var snapshot = await Downloader(hub).PullAsync("tiny-org/tiny-model", "main", null, Token);

        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(snapshot, "model.safetensors")));
        var get = Assert.Single(hub.Requests, r => r.Method == "GET" && r.Path.EndsWith("model.safetensors", StringComparison.Ordinal));
        Assert.Equal($"bytes={weights.Length / 2}-", get.Range);
        Assert.Equal(weights.Length - weights.Length / 2, get.BytesSent);
    }

    [Fact]
    public async Task BytesThatFailTheirChecksum_AreDiscarded_WithOneLine()
    {
        var original = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config());
        using var hub = new LoopbackHub("tiny-org/tiny-model", original) { Corrupt = "config.json" };
        var error = await Assert.ThrowsAsync<MirageException>(() => Downloader(hub).PullAsync("tiny-org/tiny-model", "main", null, Token));
        Assert.Contains("config.json: the downloaded bytes do not match the server's checksum", error.Message);
        Assert.Empty(Directory.GetFiles(Path.Combine(_temp.Path, "hub", "models--tiny-org--tiny-model", "blobs")));
    }

    [Fact]
    public async Task AMissingRepository_AGatedOne_AndNoNetwork_EachSayWhatToDo()
    {
        var original = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config());
        using var hub = new LoopbackHub("tiny-org/tiny-model", original);
        Assert.Contains("has no config.json for tiny-org/other (404)", (await Assert.ThrowsAsync<MirageException>(() => Downloader(hub).PullAsync("tiny-org/other", "main", null, Token))).Message);

        using var gated = new LoopbackHub("tiny-org/tiny-model", original) { RequireToken = "right" };
        Assert.Contains("set HF_TOKEN", (await Assert.ThrowsAsync<MirageException>(() => Downloader(gated).PullAsync("tiny-org/tiny-model", "main", null, Token))).Message);
        Assert.Contains("(the one set was refused)", (await Assert.ThrowsAsync<MirageException>(() => Downloader(gated, "wrong").PullAsync("tiny-org/tiny-model", "main", null, Token))).Message);
        await Downloader(gated, "right").PullAsync("tiny-org/tiny-model", "main", null, Token);

        var offline = new HuggingFaceDownloader(new HttpClient(), new HuggingFaceCache(_temp.Path), new Uri($"http://127.0.0.1:{LoopbackHub.FreePort()}/"), null);
        Assert.StartsWith("Cannot reach http://127.0.0.1:", (await Assert.ThrowsAsync<MirageException>(() => offline.PullAsync("tiny-org/tiny-model", "main", null, Token))).Message);
    }

    [Fact]
    public async Task LfsFiles_FollowTheHubsRedirect_WithoutTheToken_AndAreCheckedAgainstTheLinkedEtag()
    {
        var original = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config());
        using var cdn = new LoopbackHub("tiny-org/tiny-model", original);
        using var hub = new LoopbackHub("tiny-org/tiny-model", original) { Cdn = cdn };
        var snapshot = await Downloader(hub, token: "secret").PullAsync("tiny-org/tiny-model", "main", null, Token);

        var weights = File.ReadAllBytes(Path.Combine(original, "model.safetensors"));
        Assert.Equal(Path.Combine("..", "..", "blobs", LoopbackHub.Sha256(weights)), new FileInfo(Path.Combine(snapshot, "model.safetensors")).LinkTarget);
        Assert.Contains(cdn.Requests, r => r.Method == "GET" && r.BytesSent == weights.Length);
        // The token goes to the hub only, never to the host a redirect names.
        Assert.All(hub.Requests, r => Assert.Equal("Bearer secret", r.Authorization));
        Assert.All(cdn.Requests, r => Assert.Null(r.Authorization));
    }

    private sealed class Progress(ConcurrentQueue<DownloadProgress> reports) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => reports.Enqueue(value);
    }

    /// <summary>
    /// A hub on 127.0.0.1 serving one repository's folder at <c>/ORG/NAME/resolve/REVISION/FILE</c>:
    /// HEAD and GET, X-Repo-Commit, ETag (sha256 for .safetensors, the git blob id otherwise), Range.
    /// </summary>
    private sealed class LoopbackHub : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly string _repository;
        private readonly string _folder;

        public LoopbackHub(string repository, string folder)
        {
            _repository = repository;
            _folder = folder;
            Endpoint = new Uri($"http://127.0.0.1:{FreePort()}/");
            _listener.Prefixes.Add(Endpoint.ToString());
            _listener.Start();
            _ = Task.Run(ServeAsync);
        }

        public Uri Endpoint { get; }

        public string? Corrupt { get; init; }

        public string? RequireToken { get; init; }

        /// <summary>Where LFS files (.safetensors) are redirected, as the hub sends them to its CDN; null serves them directly.</summary>
        public LoopbackHub? Cdn { get; init; }

        public ConcurrentQueue<(string Method, string Path, string? Range, string? Authorization, long BytesSent)> Requests { get; } = new();

        public static int FreePort()
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            return ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

        private static string GitBlobId(byte[] bytes) =>
            Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception) when (!_listener.IsListening)
                {
                    return;
                }
                var (request, response) = (context.Request, context.Response);
                long sent = 0;
                var prefix = $"/{_repository}/resolve/main/";
                var path = request.Url!.AbsolutePath;
                var file = path.StartsWith(prefix, StringComparison.Ordinal) ? Path.Combine(_folder, Uri.UnescapeDataString(path[prefix.Length..])) : null;
                if (RequireToken is not null && request.Headers["Authorization"] != $"Bearer {RequireToken}")
                {
                    response.StatusCode = 401;
                }
                else if (file is null || !File.Exists(file))
                {
                    response.StatusCode = 404;
                }
                else if (Cdn is not null && file.EndsWith(".safetensors", StringComparison.Ordinal))
                {
                    // The hub's LFS answer: a redirect carrying the commit, the content's sha256 and size.
                    var bytes = File.ReadAllBytes(file);
                    response.StatusCode = 302;
                    response.AddHeader("Location", new Uri(Cdn.Endpoint, $"/{_repository}/resolve/main/{Path.GetFileName(file)}").ToString());
                    response.AddHeader("X-Repo-Commit", Commit);
                    response.AddHeader("X-Linked-Etag", $"\"{Sha256(bytes)}\"");
                    response.AddHeader("X-Linked-Size", bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    response.AddHeader("ETag", "\"pointer-file-etag\"");
                }
                else
                {
                    var bytes = File.ReadAllBytes(file);
                    response.AddHeader("X-Repo-Commit", Commit);
                    response.AddHeader("ETag", $"\"{(file.EndsWith(".safetensors", StringComparison.Ordinal) ? Sha256(bytes) : GitBlobId(bytes))}\"");
                    if (Path.GetFileName(file) == Corrupt)
                        bytes[0] ^= 1;
                    long from = request.Headers["Range"] is { } range ? long.Parse(range["bytes=".Length..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture) : 0;
                    response.StatusCode = from > 0 ? 206 : 200;
                    response.ContentLength64 = bytes.Length - from;
                    if (request.HttpMethod == "GET")
                    {
                        // Recorded before the bytes go out: the client may finish reading before this thread runs again.
                        sent = bytes.Length - from;
                        Requests.Enqueue((request.HttpMethod, path, request.Headers["Range"], request.Headers["Authorization"], sent));
                        await response.OutputStream.WriteAsync(bytes.AsMemory((int)from));
                        response.Close();
                        continue;
                    }
                }
                Requests.Enqueue((request.HttpMethod, path, request.Headers["Range"], request.Headers["Authorization"], sent));
                response.Close();
            }
        }

        public void Dispose() => _listener.Close();
    }
}
