using Mirage.Core.Models;
using Mirage.Core.Tokenization;
using Mirage.Core.Tokenization.Jinja;
using Mirage.Tests;

namespace Mirage.Core.Tests.Tokenization;

/// <summary>
/// Chat templates come from model files, so from strangers: each of these once overflowed the
/// stack, hung, or grew without bound; now each is refused with one line naming the limit.
/// </summary>
public sealed class HostileChatTemplateTests
{
    private static string Repeat(string text, int times) => string.Concat(Enumerable.Repeat(text, times));

    private static string Render(string source, string content = "hello", CancellationToken cancellationToken = default) =>
        JinjaTemplate.Parse(source).Render(new Dictionary<string, object?>
        {
            ["messages"] = new List<object?> { new Dictionary<string, object?> { ["role"] = "user", ["content"] = content } },
        }, cancellationToken);

    public static TheoryData<string, string> DeepTemplates => new()
    {
        { "{{ " + Repeat("(", 200_000) + "1" + Repeat(")", 200_000) + " }}", "tokens" },
        { "{{ " + Repeat("(", 100) + "1" + Repeat(")", 100) + " }}", "an expression nests more than 64 deep" },
        { "{{ " + Repeat("[", 100) + Repeat("]", 100) + " }}", "an expression nests more than 64 deep" },
        { "{{ " + Repeat("not ", 100) + "x }}", "an expression nests more than 64 deep" },
        { "{{ " + Repeat("- ", 100) + "1 }}", "an expression nests more than 64 deep" },
        { "{{ 1" + Repeat(" if x else 1", 100) + " }}", "an expression nests more than 64 deep" },
        { Repeat("{% if true %}", 20_000) + Repeat("{% endif %}", 20_000), "statements nest more than 64 deep" },
        { Repeat("{% for m in messages %}", 20_000) + Repeat("{% endfor %}", 20_000), "statements nest more than 64 deep" },
        { "{{ 1" + Repeat(" + 1", 200_000) + " }}", "an expression has more than 4,096 tokens" },
        { "{{ '" + new string('a', 2_000_000) + "' }}", "its source is 2,000,008 characters, over the limit of 1,048,576" },
    };

    [Theory]
    [MemberData(nameof(DeepTemplates))]
    public void DeepOrHugeTemplates_AreRefusedWhenParsed(string source, string limit)
    {
        var error = Assert.Throws<ChatTemplateLimitException>(() => JinjaTemplate.Parse(source));
        Assert.Contains(limit, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void LongOperatorChains_WithinTheLimits_StillRender() =>
        Assert.Equal("2001", Render("{{ 1" + Repeat(" + 1", 2000) + " }}"));

    [Theory]
    [InlineData("{% for a in messages[0].content %}{% for b in messages[0].content %}{% endfor %}{% endfor %}", "loops ran more than 100,000 iterations")]
    [InlineData("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "is longer than the 100,000 loop iterations")]
    [InlineData("{% for i in range(1000000000) %}{% endfor %}", "range(1,000,000,000) is longer than")]
    [InlineData("{% for i in range(90000) %}{{ messages[0].content }}{% endfor %}", "the rendered prompt would hold")]
    [InlineData("{% set ns = namespace() %}{% set ns.s = messages[0].content %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "a string would hold")]
    [InlineData("{{ messages[0].content * 100000000 }}", "a repeated string would hold")]
    [InlineData("{% set ns = namespace() %}{% set ns.x = [1] %}{% for i in range(40) %}{% set ns.x = ns.x + ns.x %}{% endfor %}", "a list would hold")]
    [InlineData("{% set ns = namespace() %}{% set ns.x = [1] %}{% for i in range(40) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}{{ ns.x }}", "a value's JSON would hold")]
    [InlineData("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns | tojson }}", "a value nests more than 64 deep")]
    [InlineData("{{ messages[0].content.replace('', messages[0].content * 1000) }}", "a replaced string would hold")]
    public void RunawayRenders_StopAtTheirLimit(string source, string limit)
    {
        var error = Assert.Throws<ChatTemplateLimitException>(() => Render(source, content: new string('x', 1000)));
        Assert.Contains(limit, error.Message);
    }

    [Fact]
    public void ASlowRender_StopsAtTheTimeLimit()
    {
        // Each replace walks 4 million characters: well within every size and loop limit, but slow.
        const string Slow = "{% set ns = namespace() %}{% set ns.s = 'a' * 4000000 %}{% for i in range(100000) %}{% set t = ns.s.replace('a', 'b') %}{% endfor %}";
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var error = Assert.Throws<ChatTemplateLimitException>(() => Render(Slow));
        Assert.Contains("rendering took longer than 2 s", error.Message);
        Assert.InRange(watch.Elapsed.TotalSeconds, 1.9, 30);
    }

    [Fact]
    public void ACancelledRequest_StopsTheRender()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => Render("{% for i in range(10) %}x{% endfor %}", cancellationToken: cancelled.Token));
    }

    [Theory]
    [InlineData("{{ 1 % 0 }}", "rendering failed")]
    [InlineData("{{ range('a') }}", "expected an integer, got 'a'")]
    [InlineData("{{ messages. }}", "cannot read the expression 'messages.'")]
    [InlineData("{{ 99999999999999999999999 }}", "cannot read the expression")]
    public void TemplateErrors_AreMirageErrors_NotCrashes(string source, string message) =>
        Assert.Contains(message, Assert.Throws<MirageException>(() => Render(source)).Message);

    [Fact]
    public void ARepeatedDictionaryKey_KeepsTheLastValue_AsPythonDoes() =>
        Assert.Equal("2", Render("{{ {'a': 1, 'a': 2}['a'] }}"));

    [Fact]
    public void AModelWithARunawayTemplate_IsRefusedWhenItLoads()
    {
        using var temp = new TempDirectory();
        var directory = SharedAssets.Stories260KWithChatTemplate(temp, "{% for m in messages %}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{% endfor %}");
        var error = Assert.Throws<ChatTemplateLimitException>(() => LanguageModel.Load(directory));
        Assert.Contains("100,000", error.Message);
    }

    [Fact]
    public void AModelWithATemplateThisRendererLacks_Loads_AndFailsOnlyWhenAChatPromptNeedsIt()
    {
        using var temp = new TempDirectory();
        using var model = LanguageModel.Load(SharedAssets.Stories260KWithChatTemplate(temp, "{% macro f() %}{% endmacro %}"));
        Assert.Contains("statement 'macro' is not supported", Assert.Throws<MirageException>(() => model.Tokenizer.ChatTemplate).Message);
    }

    [Fact]
    public void ATemplateThatGrowsWithTheInput_LoadsButRefusesAnInputPastTheLimit()
    {
        using var temp = new TempDirectory();
        using var model = LanguageModel.Load(SharedAssets.Stories260KWithChatTemplate(temp, "{% for m in messages %}{% for c in m.content %}{% for c2 in m.content %}.{% endfor %}{% endfor %}{% endfor %}"));
        var error = Assert.Throws<ChatTemplateLimitException>(() => ConversationPrompt.Encode(model.Tokenizer, [new("user", new string('x', 1000))]));
        Assert.Contains("loops ran more than", error.Message);
    }
}
