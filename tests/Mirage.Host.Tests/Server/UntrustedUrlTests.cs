using System.Net;
using OpenQA.Selenium;
using OpenQA.Selenium.Support.UI;

namespace Mirage.Host.Tests.Server;

/// <summary>
/// Passage URLs come from retrieved documents, which an attacker may write: only http(s) become
/// links, results and the page carry a Content-Security-Policy, and the page's result frame is sandboxed.
/// </summary>
public sealed class UntrustedUrlTests
{
    private static readonly CancellationToken Token = TestContext.Current.CancellationToken;

    private const string Hostile = "javascript:alert(document.domain)";

    private static object Body(string url) => new
    {
        question = "q",
        passages = new[] { new { text = "Lousdrur Rourti works for Cimgun Labs.", url } },
        answer = "Lousdrur Rourti works for Cimgun Labs.",
    };

    [Theory]
    [InlineData(Hostile)]
    [InlineData("JavaScript:alert(1)")]
    [InlineData(" javascript:alert(1)")]
    [InlineData("data:text/html,<script>alert(1)</script>")]
    [InlineData("vbscript:msgbox(1)")]
    [InlineData("file:///etc/passwd")]
    [InlineData("http://example.org/\njavascript:alert(1)")]
    public async Task OnlyHttpUrls_BecomeLinks_InHtmlResults(string url)
    {
        await using var server = await RunningServer.StartAsync();
        var response = await server.PostAsync("/v1/citations?format=html", Body(url));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var html = await response.Content.ReadAsStringAsync(Token);
        Assert.DoesNotContain("href=\"" + WebUtility.HtmlEncode(url), html);
        Assert.DoesNotContain("href=\"" + WebUtility.HtmlEncode(url.Trim()), html);
        Assert.Contains(WebUtility.HtmlEncode(url), html);

        var linked = await server.PostAsync("/v1/citations?format=html", Body("https://example.org/a?b=1&c=2"));
        Assert.Contains("href=\"https://example.org/a?b=1&amp;c=2\"", await linked.Content.ReadAsStringAsync(Token));
    }

    [Fact]
    public async Task HtmlResultsAndThePage_SendASecurityPolicy_AndNoSniff()
    {
        await using var server = await RunningServer.StartAsync();
        var result = await server.PostAsync("/v1/citations?format=html", Body(Hostile));
        var page = await server.Http.GetAsync("/", Token);
        foreach (var response in new[] { result, page })
        {
            var policy = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
            Assert.Contains("default-src 'none'", policy);
            Assert.Contains("frame-ancestors 'none'", policy);
            Assert.DoesNotContain("unsafe", policy.Split("script-src")[1].Split(';')[0]);
            Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        }
        var json = await server.PostAsync("/v1/citations", Body(Hostile));
        Assert.Equal("nosniff", json.Headers.GetValues("X-Content-Type-Options").Single());
        // The JSON keeps what the caller sent: it is data, and the docs call it untrusted.
        Assert.Contains(Hostile, await json.Content.ReadAsStringAsync(Token));
    }

    [Fact]
    public async Task AJavascriptUrl_NeverRuns_InThePage()
    {
        await using var server = await RunningServer.StartAsync();
        using var browser = HeadlessChromium.Start();
        browser.Navigate().GoToUrl(new Uri(server.Address, "/"));
        // The page shows a result as it shows its own: the server's HTML in the result frame.
        var script = """
            const done = arguments[arguments.length - 1];
            fetch('/v1/citations?format=html', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: arguments[0] })
              .then(r => r.text()).then(html => { document.getElementById('view').srcdoc = html; done('ok'); }, e => done(String(e)));
            """;
        Assert.Equal("ok", ((IJavaScriptExecutor)browser).ExecuteAsyncScript(script, System.Text.Json.JsonSerializer.Serialize(Body("javascript:top.document.title='pwned';alert(1)"))));
        new WebDriverWait(browser, TimeSpan.FromSeconds(60)).Until(b => !string.IsNullOrEmpty(b.FindElement(By.Id("view")).GetAttribute("srcdoc")));
        Assert.Contains("sandbox", browser.FindElement(By.Id("view")).GetAttribute("outerHTML"));

        browser.SwitchTo().Frame(browser.FindElement(By.Id("view")));
        new WebDriverWait(browser, TimeSpan.FromSeconds(30)).Until(b => b.FindElements(By.CssSelector("article")).Count == 1);
        Assert.DoesNotContain(browser.FindElements(By.TagName("a")), a => (a.GetAttribute("href") ?? "").StartsWith("javascript", StringComparison.OrdinalIgnoreCase));
        foreach (var element in browser.FindElements(By.CssSelector("article h3 *")))
            element.Click();
        // The view's own script still runs under the policy (it paints the cue tokens).
        Assert.Contains(browser.FindElements(By.CssSelector(".tok")), t => !string.IsNullOrEmpty(t.GetAttribute("title")));
        browser.SwitchTo().DefaultContent();
        Assert.Throws<NoAlertPresentException>(() => browser.SwitchTo().Alert());
        Assert.Equal("Mirage", browser.Title);
    }
}
