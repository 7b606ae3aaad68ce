using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Mirage.Host.Server.Scaling;
using Mirage.Host.Tests.Server;

namespace Mirage.Host.Tests.Scaling;

/// <summary>Chat completions through the api and worker roles: the single process's answers, streamed or not, and what a client sees when the worker dies mid-answer.</summary>
[Collection(nameof(ScaleOut))]
public sealed partial class ScaleOutChatTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [GeneratedRegex("\"id\":\"chatcmpl-[0-9a-f]+\",|\"created\":[0-9]+,")]
    private static partial Regex PerResponseFields();

    internal static object Chat(string question, bool stream, string? citationMethod = null) => new
    {
        messages = new[] { new { role = "user", content = question } },
        passages = RunningServer.Passages,
        stream,
        citations = citationMethod is null ? null : new { method = citationMethod },
    };

    /// <summary>The response body with its id and creation time (which differ per response) taken out.</summary>
    internal static async Task<string> ComparableAsync(HttpResponseMessage response) =>
        PerResponseFields().Replace(await response.Content.ReadAsStringAsync(Token), "");

    [Fact]
    public async Task ChatThroughWorkers_AnswersAsTheSingleProcess_StreamedOrNot_WhateverModelTheClientNames()
    {
        string[] questions = ["Which organisation does Lousdrur Rourti work for?", "Where was Caszais Rourti born?"];
        var reference = new List<string>();
        await using (var single = await RunningServer.StartAsync())
        {
            foreach (var question in questions)
            foreach (var stream in new[] { false, true })
                reference.Add(await ComparableAsync(await single.PostAsync("/v1/chat/completions", Chat(question, stream))));
        }
        await using var cluster = await ScaleOut.StartAsync(workers: 1);
        int i = 0;
        foreach (var question in questions)
        foreach (var stream in new[] { false, true })
        {
            var response = await cluster.Api.PostAsync("/v1/chat/completions", Chat(question, stream));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(stream ? "text/event-stream" : "application/json", response.Content.Headers.ContentType!.MediaType);
            Assert.Equal(reference[i++], await ComparableAsync(response));
        }

        // Input the model refuses is a plain 400 before any chunk, as in one process.
        var tooLong = await cluster.Api.PostAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = new string('x', 200_000) } }, stream = true });
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        // A model name no worker serves is answered by the one model served, as one process ignores it.
        var named = await cluster.Api.PostAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = questions[0] } }, passages = RunningServer.Passages, model = "gpt-4o" });
        Assert.Equal(HttpStatusCode.OK, named.StatusCode);
        Assert.Equal(reference[0], await ComparableAsync(named));
    }

    [Fact]
    public async Task AStreamWhoseWorkerDiedBeforeAnyChunkCameThrough_StartsAgain_AndTheClientGetsTheWholeAnswer()
    {
        const string question = "Which organisation does Lousdrur Rourti work for?";
        string reference;
        await using (var single = await RunningServer.StartAsync())
            reference = await ComparableAsync(await single.PostAsync("/v1/chat/completions", Chat(question, stream: true)));
        await using var cluster = await ScaleOut.StartAsync(workers: 1, workerSettings: ["--Nats:AckWaitSeconds=2"]);

        // The worker hangs, so the job waits; it is then marked as a worker marks a stream whose first
        // chunk is on its way, as though that worker had died there. The next delivery fails it.
        cluster.Workers[0].Freeze();
        var answering = cluster.Api.PostAsync("/v1/chat/completions", Chat(question, stream: true));
        var queued = await cluster.FindAsync(s => s.Status == JobState.Queued);
        await cluster.WriteStateAsync(queued with { Status = JobState.Running, Worker = "gone", Streamed = true });
        cluster.Workers[0].Thaw();

        // No chunk reached the client, so the api started the answer again: the client sees it whole.
        var response = await answering;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(reference, await ComparableAsync(response));
        var first = (await cluster.StateAsync(queued.Id))!;
        Assert.Equal(JobState.Failed, first.Status);
        Assert.Equal(JobWorker.StoppedMidStream, first.Error!["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task AWorkerThatHangsMidStream_EndsTheStreamWithAnError_AndAHungNonStreamedAnswerIsFinishedElsewhere()
    {
        await using var cluster = await ScaleOut.StartAsync(workers: 2, workerSettings: ["--Nats:AckWaitSeconds=2"]);

        // Occlusion makes the citing after the tokens slow enough to freeze the worker mid-stream.
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(Chat("Which organisation does Lousdrur Rourti work for?", stream: true, "occlusion")) };
        using (var response = await cluster.Api.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Token))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Token));
            var events = new List<string>();
            while (events.Count < 2 && await reader.ReadLineAsync(Token) is { } line)
            {
                if (line.StartsWith("data: ", StringComparison.Ordinal))
                    events.Add(line["data: ".Length..]);
            }
            var streaming = await cluster.AnyRunningAsync();
            streaming.Freeze();
            while (await reader.ReadLineAsync(Token) is { } line)
            {
                if (line.StartsWith("data: ", StringComparison.Ordinal))
                    events.Add(line["data: ".Length..]);
            }
            Assert.Equal("[DONE]", events[^1]);
            Assert.Contains("stopped mid-answer", JsonNode.Parse(events[^2])!["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.DoesNotContain(events, e => e.Contains("annotations", StringComparison.Ordinal));
            streaming.Thaw();
        }

        // Not streamed: the client sees only a longer wait.
        var answer = cluster.Api.PostAsync("/v1/chat/completions", Chat("Where was Caszais Rourti born?", stream: false, "occlusion"));
        var hung = await cluster.AnyRunningAsync();
        hung.Freeze();
        var completed = await answer;
        Assert.Equal(HttpStatusCode.OK, completed.StatusCode);
        var body = JsonNode.Parse(await completed.Content.ReadAsStringAsync(Token))!;
        Assert.NotEmpty(body["choices"]![0]!["message"]!["annotations"]!.AsArray());
        hung.Thaw();
    }
}
