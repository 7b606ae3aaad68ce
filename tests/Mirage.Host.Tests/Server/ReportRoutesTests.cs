using Mirage.Host.Tests.Cli;
using Mirage.Tests;
using OpenQA.Selenium;
using OpenQA.Selenium.Support.UI;

namespace Mirage.Host.Tests.Server;

/// <summary>
/// <c>cite --format html --routes</c>: the report carries every answer token's routes and draws the
/// one clicked, opened from disk in headless Chromium as a user opens the file.
/// </summary>
public sealed class ReportRoutesTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task TheReport_DrawsAClickedTokensRoutes_AndANodesLens_WithoutScriptErrors_OrHostileMarkup()
    {
        var path = _temp.File("report.html");
        string[] args = ["cite", "--question", RunningServer.Question, "--passages", Path.Combine(SharedAssets.RepositoryRoot, "samples", "reader-passages.json"),
            "--answer", "Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grekbrothholm.", "--format", "html"];
        var (exitCode, _, error) = await CliRunner.RunAsync([.. args, "--routes", "--out", path]);
        Assert.True(exitCode == 0, error);
        Assert.Contains("routes: 14 answer tokens traced in ", error, StringComparison.Ordinal);

        using var browser = HeadlessChromium.Start();
        browser.Navigate().GoToUrl(new Uri(path));
        var script = (IJavaScriptExecutor)browser;
        // Errors after load are caught here; one during load would have stopped the view from being built.
        script.ExecuteScript("window.problems = []; window.addEventListener('error', e => problems.push(e.message));");
        var tokens = browser.FindElements(By.CssSelector("#tokens button"));
        Assert.Equal(14, tokens.Count);
        Assert.Equal("true", tokens[0].GetAttribute("aria-pressed"));
        Assert.NotEmpty(browser.FindElements(By.CssSelector("#graph circle")));

        // The wrong birthplace: its routes start mostly at passage 3, the similar name's.
        tokens.Single(b => b.GetDomProperty("textContent") == " Grekbrothholm").Click();
        var wait = new WebDriverWait(browser, TimeSpan.FromSeconds(10));
        wait.Until(b => b.FindElements(By.CssSelector("#tokens button[aria-pressed='true']")).SingleOrDefault()?.GetDomProperty("textContent") == " Grekbrothholm");
        var (passages, top) = ServerPageTests.Shares(browser);
        Assert.Equal(4, passages);
        Assert.StartsWith("[3] 49.0%", top);
        Assert.NotEmpty(browser.FindElements(By.CssSelector("#graph rect.passage")));

        browser.FindElement(By.CssSelector("#graph circle.node.A")).Click();
        wait.Until(b => b.FindElements(By.CssSelector("#lens .heads li")).Count > 0);
        Assert.EndsWith(": logit lens", browser.FindElement(By.CssSelector("#lens h3")).Text);
        Assert.Equal("[]", script.ExecuteScript("return JSON.stringify(window.problems);"));

        // Hostile passage text travels as escaped JSON: the report's three script elements stay its only ones.
        var hostile = _temp.File("hostile.json");
        File.WriteAllText(hostile, """[{"id": "x</script><script>alert(1)</script>", "title": "<img src=x onerror=alert(2)>", "text": "Lousdrur Rourti was born in </script><script>alert(3)</script> Grouscelford."}]""");
        var hostileReport = _temp.File("hostile.html");
        var (hostileExit, _, hostileError) = await CliRunner.RunAsync(["cite", "--question", "Where was Lousdrur Rourti born?", "--passages", hostile,
            "--answer", "Lousdrur Rourti was born in Grouscelford.", "--format", "html", "--routes", "--out", hostileReport]);
        Assert.True(hostileExit == 0, hostileError);
        var html = File.ReadAllText(hostileReport);
        Assert.Equal(3, html.Split("<script").Length - 1);
        Assert.DoesNotContain("<img", html, StringComparison.Ordinal);

        // Routes are drawn in the HTML report only.
        var (refused, _, message) = await CliRunner.RunAsync([.. args[..^2], "--routes"]);
        Assert.Equal(1, refused);
        Assert.Contains("--routes draws the routes in the HTML report: add --format html", message, StringComparison.Ordinal);
    }
}
