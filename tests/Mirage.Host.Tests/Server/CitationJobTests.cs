using System.Net;
using System.Text.Json.Nodes;

namespace Mirage.Host.Tests.Server;

/// <summary>Asynchronous citation jobs: queued at once, polled to the same result the synchronous endpoint gives, idempotent by key, cancellable.</summary>
public sealed class CitationJobTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static object Body => new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer };

    private static async Task<JsonNode> Json(HttpResponseMessage response) => JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!;

    private static async Task<JsonNode> WaitAsync(RunningServer server, string id)
    {
        while (true)
        {
            var job = await Json(await server.Http.GetAsync($"/v1/citations/jobs/{id}", Token));
            if (job["status"]!.GetValue<string>() is "done" or "failed")
                return job;
            await Task.Delay(50, Token);
        }
    }

    [Fact]
    public async Task AJob_IsAcceptedAtOnce_AndGivesWhatTheSynchronousEndpointGives()
    {
        await using var server = await RunningServer.StartAsync();
        var accepted = await server.PostAsync("/v1/citations/jobs", Body);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var id = (await Json(accepted))["id"]!.GetValue<string>();
        Assert.Equal($"/v1/citations/jobs/{id}", accepted.Headers.Location!.ToString());

        var job = await WaitAsync(server, id);
        Assert.Equal("done", job["status"]!.GetValue<string>());
        var direct = await Json(await server.PostAsync("/v1/citations", Body));
        Assert.Equal(direct["sentences"]!.ToJsonString(), job["result"]!["sentences"]!.ToJsonString());
        Assert.Equal(direct["annotations"]!.ToJsonString(), job["result"]!["annotations"]!.ToJsonString());

        Assert.Equal(HttpStatusCode.NotFound, (await server.Http.GetAsync("/v1/citations/jobs/nosuchjob", Token)).StatusCode);
        var invalid = await server.PostAsync("/v1/citations/jobs", new { question = "q", passages = Array.Empty<object>(), answer = "a" });
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
    }

    [Fact]
    public async Task TheSameIdempotencyKey_ReturnsTheSameJob()
    {
        await using var server = await RunningServer.StartAsync();
        async Task<string> Create()
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/citations/jobs") { Content = System.Net.Http.Json.JsonContent.Create(Body) };
            request.Headers.Add("Idempotency-Key", "order-17");
            return (await Json(await server.Http.SendAsync(request, Token)))["id"]!.GetValue<string>();
        }
        var first = await Create();
        Assert.Equal(first, await Create());
        await WaitAsync(server, first);
        Assert.Equal(first, await Create());
        Assert.NotEqual(first, (await Json(await server.PostAsync("/v1/citations/jobs", Body)))["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Delete_CancelsAJobThatHasNotFinished()
    {
        await using var server = await RunningServer.StartAsync();
        // The test holds the model, so the job cannot finish before it is cancelled.
        var model = server.Model;
        await model.ComputeGate.WaitAsync(Token);
        var id = (await Json(await server.PostAsync("/v1/citations/jobs", Body)))["id"]!.GetValue<string>();
        var deleted = await server.Http.DeleteAsync($"/v1/citations/jobs/{id}", Token);
        Assert.Equal(HttpStatusCode.Accepted, deleted.StatusCode);
        var job = await WaitAsync(server, id);
        model.ComputeGate.Release();
        Assert.Equal("failed", job["status"]!.GetValue<string>());
        Assert.Equal("Cancelled", job["error"]!["title"]!.GetValue<string>());
    }
}
