using System.Net;
using System.Text.Json.Nodes;
using Mirage.Tests;

namespace Mirage.Host.Tests.Server;

/// <summary>A model file is untrusted input: a hostile chat template is refused, never served into a crash or a wedged worker.</summary>
public sealed class HostileModelTests
{
    private static readonly CancellationToken Token = TestContext.Current.CancellationToken;

    private static object Chat(string content) => new { messages = new[] { new { role = "user", content } }, max_tokens = 2 };

    [Fact]
    public async Task ATemplateThatGrowsWithTheInput_Refuses_ThatRequestWith400_AndServesTheNext()
    {
        using var temp = new TempDirectory();
        var model = SharedAssets.Stories260KWithChatTemplate(temp,
            "{% for m in messages %}{% for a in m.content %}{% for b in m.content %}{% endfor %}{% endfor %}{{ m.content }}{% endfor %}");
        await using var server = await RunningServer.StartAsync($"--Server:ModelPath={model}");

        var refused = await server.PostAsync("/v1/chat/completions", Chat(new string('x', 2000)));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("loops ran more than 100,000 iterations", JsonNode.Parse(await refused.Content.ReadAsStringAsync(Token))!["detail"]!.GetValue<string>());

        var served = await server.PostAsync("/v1/chat/completions", Chat("Once upon a time"));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }

    [Fact]
    public async Task ATemplateThatRunsAwayOnAnyInput_FailsTheLoad_AndHealthSaysWhy()
    {
        using var temp = new TempDirectory();
        var model = SharedAssets.Stories260KWithChatTemplate(temp, "{% for m in messages %}{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}{% endfor %}");
        await using var server = await RunningServer.StartAsync($"--Server:ModelPath={model}");

        var health = await server.Http.GetAsync("/health", Token);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        var chat = await server.PostAsync("/v1/chat/completions", Chat("Hi"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, chat.StatusCode);
        Assert.Contains("Chat template: range(100,000) is longer than the 100,000 loop iterations", await chat.Content.ReadAsStringAsync(Token));
    }
}
