using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Mirage.Core.Models.Sources;
using Mirage.Tests;

namespace Mirage.Core.Tests.Models.Sources;

/// <summary>
/// <c>mirage pull</c> against a server that misbehaves on purpose (raw HTTP on 127.0.0.1): every case
/// ends in bounded time and bytes, with one line that says what to do, and nothing unverified is stored.
/// </summary>
public sealed class HostileHubTests : IDisposable
{
    private const string Commit = "0123456789abcdef0123456789abcdef01234567";
    private static CancellationToken Token => TestContext.Current.CancellationToken;
    private readonly TempDirectory _temp = new();
    private readonly string _repository;

    public HostileHubTests() => _repository = TinyCheckpoint.Write(_temp, TinyCheckpoint.Config());

    public void Dispose() => _temp.Dispose();

    private string Cache => Path.Combine(_temp.Path, "hub");

    private string Blobs => Path.Combine(Cache, "models--org--model", "blobs");

    private HuggingFaceDownloader Downloader(HostileHub hub) =>
        new(new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }), new HuggingFaceCache(Cache), hub.Endpoint, null)
        {
            StallTimeout = TimeSpan.FromSeconds(1),
            MaxFileBytes = 1 << 20,
        };

    private async Task<string> Refused(HostileHub hub, HuggingFaceDownloader? downloader = null)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<MirageException>(() => (downloader ?? Downloader(hub)).PullAsync("org/model", "main", null, Token));
        Assert.InRange(watch.Elapsed.TotalSeconds, 0, 20);
        Assert.DoesNotContain('\n', error.Message);
        return error.Message;
    }

    [Fact]
    public async Task AServerThatNeverAnswers_IsDroppedAfterTheStallTimeout()
    {
        using var hub = new HostileHub(_repository, (_, _, _, stopping) => Task.Delay(Timeout.Infinite, stopping), answers: _ => true);
        Assert.Contains("sent no answer in 1 s", await Refused(hub));
    }

    [Fact]
    public async Task AServerThatStallsAfterTheHeaders_IsDropped_AndThePartialFileKeptForResuming()
    {
        using var hub = new HostileHub(_repository, Weights(async (stream, bytes, stopping) =>
        {
            await HostileHub.WriteHead(stream, "200 OK", $"Content-Length: {bytes.Length}");
            await stream.WriteAsync(bytes.AsMemory(0, 4096), stopping);
            await Task.Delay(Timeout.Infinite, stopping);
        }));
        var message = await Refused(hub);
        Assert.Contains("sent less than 1,024 bytes of model.safetensors in 1 s; the download was stopped at 4,096 bytes, run mirage pull again to resume it", message);
    }

    [Fact]
    public async Task AServerThatTricklesAByteAtATime_IsAStall()
    {
        using var hub = new HostileHub(_repository, Weights(async (stream, bytes, stopping) =>
        {
            await HostileHub.WriteHead(stream, "200 OK", $"Content-Length: {bytes.Length}");
            for (int i = 0; i < bytes.Length; i++)
            {
                await stream.WriteAsync(bytes.AsMemory(i, 1), stopping);
                await Task.Delay(200, stopping);
            }
        }));
        Assert.Contains("sent less than 1,024 bytes of model.safetensors in 1 s", await Refused(hub));
    }

    [Fact]
    public async Task ADeclaredSizeOverTheCap_IsRefusedBeforeDownloading()
    {
        using var hub = new HostileHub(_repository, Weights(head: "X-Linked-Size: 1000000000000000"));
        Assert.Contains("model.safetensors is 1,000,000,000,000,000 bytes by", await Refused(hub));
        Assert.DoesNotContain(hub.Requests, r => r == "GET model.safetensors");
    }

    [Fact]
    public async Task AFileWithoutADeclaredSize_StopsAtTheCap()
    {
        using var hub = new HostileHub(_repository, Weights(async (stream, _, stopping) =>
        {
            await HostileHub.WriteHead(stream, "200 OK");
            var chunk = new byte[1 << 16];
            for (int i = 0; i < 64; i++)
                await stream.WriteAsync(chunk, stopping);
        }, head: "", lengthOnHead: false));
        Assert.Contains("declared no size and sent more than 1,048,576 bytes; the download was stopped", await Refused(hub));
        Assert.All(Directory.GetFiles(Blobs), f => Assert.InRange(new FileInfo(f).Length, 0, 1 << 20));
    }

    [Fact]
    public async Task AConnectionThatBreaksMidFile_SaysToPullAgain()
    {
        using var hub = new HostileHub(_repository, Weights(async (stream, bytes, stopping) =>
        {
            await HostileHub.WriteHead(stream, "200 OK", $"Content-Length: {bytes.Length}");
            await stream.WriteAsync(bytes.AsMemory(0, bytes.Length / 2), stopping);
        }));
        Assert.Contains("run mirage pull again to resume it", await Refused(hub));
    }

    [Fact]
    public async Task AnETagThatIsNoHash_IsRefused_OrWithNoVerifyStoredUnderTheHashOfItsBytes()
    {
        using var hub = new HostileHub(_repository, Weights(etag: "\"notahash\""));
        Assert.Contains("model.safetensors cannot be verified: ", await Refused(hub));
        Assert.Contains("pass --no-verify", await Refused(hub));
        Assert.False(File.Exists(Path.Combine(Blobs, "notahash")));

        var downloader = Downloader(hub);
        downloader.VerifyFiles = false;
        var snapshot = await downloader.PullAsync("org/model", "main", null, Token);
        var weights = File.ReadAllBytes(Path.Combine(_repository, "model.safetensors"));
        Assert.Equal(Path.Combine("..", "..", "blobs", Convert.ToHexStringLower(SHA256.HashData(weights))), new FileInfo(Path.Combine(snapshot, "model.safetensors")).LinkTarget);
    }

    [Fact]
    public async Task ARedirectWithoutALocation_WritesNothing()
    {
        using var hub = new HostileHub(_repository, Weights(async (stream, bytes, stopping) =>
        {
            await HostileHub.WriteHead(stream, "302 Found", $"Content-Length: {bytes.Length}");
            await stream.WriteAsync(bytes, stopping);
        }));
        Assert.Contains("answered 302 for model.safetensors without saying where to (no Location); nothing was written", await Refused(hub));
        var weights = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(_repository, "model.safetensors"))));
        Assert.DoesNotContain(Directory.GetFiles(Blobs), f => Path.GetFileName(f).StartsWith(weights, StringComparison.Ordinal));
    }

    [Fact]
    public async Task APlantedLinkInRefs_IsReplaced_NotWrittenThrough()
    {
        var outside = Path.Combine(_temp.Path, "outside.txt");
        File.WriteAllText(outside, "keep me");
        var refs = Directory.CreateDirectory(Path.Combine(Cache, "models--org--model", "refs")).FullName;
        File.CreateSymbolicLink(Path.Combine(refs, "main"), outside);
        using var hub = new HostileHub(_repository, (_, _, _, _) => Task.CompletedTask, answers: _ => false);

        await Downloader(hub).PullAsync("org/model", "main", null, Token);

        Assert.Equal("keep me", File.ReadAllText(outside));
        Assert.Null(new FileInfo(Path.Combine(refs, "main")).LinkTarget);
        Assert.Equal(Commit, File.ReadAllText(Path.Combine(refs, "main")));
    }

    [Fact]
    public async Task APlantedLinkedFolder_IsRefused_NothingWrittenOutside()
    {
        var outside = Directory.CreateDirectory(Path.Combine(_temp.Path, "elsewhere")).FullName;
        var repository = Directory.CreateDirectory(Path.Combine(Cache, "models--org--model")).FullName;
        Directory.CreateSymbolicLink(Path.Combine(repository, "snapshots"), outside);
        using var hub = new HostileHub(_repository, (_, _, _, _) => Task.CompletedTask, answers: _ => false);

        Assert.Contains("snapshots' in the Hugging Face cache is a link", await Refused(hub));
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
    }

    private delegate Task WeightsBody(Stream stream, byte[] bytes, CancellationToken stopping);

    // A handler that misbehaves for model.safetensors only: its HEAD carries `head` (and the true
    // sha256 as X-Linked-Etag unless `etag` replaces it); its GET runs `body`.
    private static HostileHub.Handler Weights(WeightsBody? body = null, string? head = null, string? etag = null, bool lengthOnHead = true) =>
        async (method, file, stream, stopping) =>
        {
            var bytes = File.ReadAllBytes(file);
            if (method == "HEAD")
            {
                var hash = etag ?? $"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))}\"";
                await HostileHub.WriteHead(stream, "200 OK", $"X-Repo-Commit: {Commit}", $"ETag: {hash}", lengthOnHead ? $"Content-Length: {bytes.Length}" : "", head ?? "");
            }
            else if (body is not null)
            {
                await body(stream, bytes, stopping);
            }
            else
            {
                await HostileHub.WriteHead(stream, "200 OK", $"Content-Length: {bytes.Length}");
                await stream.WriteAsync(bytes, stopping);
            }
        };

    /// <summary>
    /// Raw HTTP/1.1 on 127.0.0.1, one request per connection: honest for every file (HEAD with
    /// X-Repo-Commit, the git blob id as ETag, and the length; GET with the bytes) except those
    /// <c>answers</c> picks (model.safetensors by default), which the handler answers.
    /// </summary>
    private sealed class HostileHub : IDisposable
    {
        public delegate Task Handler(string method, string file, Stream stream, CancellationToken stopping);

        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly string _folder;
        private readonly Handler _handler;
        private readonly Func<string, bool> _answers;
        private readonly CancellationTokenSource _stop = new();

        public HostileHub(string folder, Handler handler, Func<string, bool>? answers = null)
        {
            (_folder, _handler, _answers) = (folder, handler, answers ?? (name => name == "model.safetensors"));
            _listener.Start();
            Endpoint = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
            _ = Task.Run(AcceptAsync);
        }

        public Uri Endpoint { get; }

        public System.Collections.Concurrent.ConcurrentQueue<string> Requests { get; } = new();

        public static async Task WriteHead(Stream stream, string status, params string[] headers)
        {
            var head = $"HTTP/1.1 {status}\r\nConnection: close\r\n" + string.Concat(headers.Where(h => h.Length > 0).Select(h => h + "\r\n")) + "\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await _listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (Exception)
                {
                    return;
                }
                _ = Task.Run(() => ServeAsync(client));
            }
        }

        private async Task ServeAsync(TcpClient client)
        {
            using (client)
            {
                try
                {
                    var stream = client.GetStream();
                    var request = new StringBuilder();
                    var buffer = new byte[1];
                    while (!request.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await stream.ReadAsync(buffer, _stop.Token) == 1)
                        request.Append((char)buffer[0]);
                    var line = request.ToString().Split("\r\n")[0].Split(' ');
                    var name = Uri.UnescapeDataString(line[1][(line[1].LastIndexOf('/') + 1)..]);
                    Requests.Enqueue($"{line[0]} {name}");
                    var file = Path.Combine(_folder, name);
                    if (_answers(name))
                        await _handler(line[0], file, stream, _stop.Token);
                    else if (!File.Exists(file))
                        await WriteHead(stream, "404 Not Found", "Content-Length: 0");
                    else
                        await Honest(line[0], file, stream);
                    await stream.FlushAsync();
                }
                catch (Exception)
                {
                    // The client left: nothing to answer.
                }
            }
        }

        private static async Task Honest(string method, string file, Stream stream)
        {
            var bytes = File.ReadAllBytes(file);
            var blobId = Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));
            await WriteHead(stream, "200 OK", $"X-Repo-Commit: {Commit}", $"ETag: \"{blobId}\"", $"Content-Length: {bytes.Length}");
            if (method == "GET")
                await stream.WriteAsync(bytes);
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
        }
    }
}
