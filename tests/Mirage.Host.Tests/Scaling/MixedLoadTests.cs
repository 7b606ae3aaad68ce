using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Mirage.Host.Tests.Server;

namespace Mirage.Host.Tests.Scaling;

/// <summary>
/// One api and three worker processes under 1,000 mixed requests (citations, chat, streamed chat,
/// jobs) while one worker is killed mid-job and another is stopped and replaced: every request gets
/// exactly its own answer, the one a single process gives.
/// </summary>
[Collection(nameof(ScaleOut))]
public sealed class MixedLoadTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private enum Kind { Citation, Job, Chat, StreamedChat }

    private static readonly string[] Answers =
    [
        "Lousdrur Rourti works for Cimgun Labs.",
        "Lousdrur Rourti was born in Grouscelford.",
        "Brensein Rourti works for Fervir Partners.",
        "Caszais Rourti was born in Grekbrothholm.",
    ];

    private static readonly string[] Questions = ["Which organisation does Lousdrur Rourti work for?", "Where was Caszais Rourti born?"];

    private static (Kind Kind, int Variant) Request(int i) => (Kind)(i % 4) switch
    {
        Kind.Citation or Kind.Job => ((Kind)(i % 4), i / 4 % Answers.Length),
        var chat => (chat, i / 4 % Questions.Length),
    };

    private static object Body((Kind Kind, int Variant) request) => request.Kind switch
    {
        Kind.Citation or Kind.Job => new { question = RunningServer.Question, passages = RunningServer.Passages, answer = Answers[request.Variant] },
        Kind.Chat => ScaleOutChatTests.Chat(Questions[request.Variant], stream: false),
        _ => ScaleOutChatTests.Chat(Questions[request.Variant], stream: true),
    };

    // What the client sees, comparable across processes and runs: ids, creation times and timings taken out.
    private static async Task<string> AnswerAsync(RunningServer server, (Kind Kind, int Variant) request, ScaleOut? cluster = null)
    {
        switch (request.Kind)
        {
            case Kind.Job when cluster is not null:
                var job = await cluster.WaitAsync(await cluster.SubmitAsync(Body(request)), seconds: 120);
                return job["status"]!.GetValue<string>() == "done" ? ScaleOutTests.Comparable(job["result"]!) : job.ToJsonString();
            case Kind.Citation or Kind.Job:
                var response = await server.PostAsync("/v1/citations", Body(request));
                var text = await response.Content.ReadAsStringAsync(Token);
                return response.StatusCode == HttpStatusCode.OK ? ScaleOutTests.Comparable(JsonNode.Parse(text)!) : $"{(int)response.StatusCode} {text}";
            default:
                var chat = await server.PostAsync("/v1/chat/completions", Body(request));
                return chat.StatusCode == HttpStatusCode.OK ? await ScaleOutChatTests.ComparableAsync(chat) : $"{(int)chat.StatusCode} {await chat.Content.ReadAsStringAsync(Token)}";
        }
    }

    [Fact]
    public async Task AThousandMixedRequests_WithAWorkerKilledAndAnotherReplaced_AreEachAnsweredOnce_WithTheirOwnAnswer()
    {
        var reference = new Dictionary<(Kind, int), string>();
        await using (var single = await RunningServer.StartAsync())
        {
            foreach (var request in Enumerable.Range(0, 16).Select(Request).Distinct())
                reference[request] = await AnswerAsync(single, request.Kind == Kind.Job ? (Kind.Citation, request.Variant) : request);
        }
        string[] workerSettings = ["--Nats:AckWaitSeconds=2"];
        await using var cluster = await ScaleOut.StartAsync(workers: 3, workerSettings);

        const int Total = 1000;
        var answers = new ConcurrentDictionary<int, string>();
        int completed = 0;
        using var clients = new SemaphoreSlim(12);
        var disruption = Task.Run(async () =>
        {
            while (Volatile.Read(ref completed) < Total / 3)
                await Task.Delay(20, Token);
            (await cluster.AnyRunningAsync()).Kill();
            while (Volatile.Read(ref completed) < 2 * Total / 3)
                await Task.Delay(20, Token);
            var leaving = cluster.Workers.First(w => !w.HasExited);
            Assert.Equal(0, await leaving.StopAsync());
            cluster.Workers.Add(await ServeProcess.StartWorkerAsync(cluster.Nats.Url, workerSettings));
        }, Token);
        await Task.WhenAll(Enumerable.Range(0, Total).Select(async i =>
        {
            await clients.WaitAsync(Token);
            try
            {
                answers[i] = await AnswerAsync(cluster.Api, Request(i), cluster);
                Interlocked.Increment(ref completed);
            }
            finally
            {
                clients.Release();
            }
        }));
        await disruption;

        Assert.Equal(Total, answers.Count);
        var wrong = answers.Where(a => a.Value != reference[Request(a.Key) is { Kind: Kind.Job } job ? (Kind.Citation, job.Variant) : Request(a.Key)]).ToList();
        // A stream whose worker was killed after its first token ends with an error event (tokens cannot be taken back); nothing else may differ.
        Assert.True(wrong.All(w => Request(w.Key).Kind == Kind.StreamedChat && w.Value.Contains("stopped mid-answer", StringComparison.Ordinal) && w.Value.TrimEnd().EndsWith("data: [DONE]", StringComparison.Ordinal)) && wrong.Count <= 1,
            $"{wrong.Count} answers differ from the single process's, first: {wrong.Select(w => $"#{w.Key} {Request(w.Key)}: {w.Value}").FirstOrDefault()}");
    }
}
