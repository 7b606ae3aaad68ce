using System.Net;
using System.Text.Json.Nodes;
using OpenQA.Selenium;
using OpenQA.Selenium.Support.UI;

namespace Mirage.Host.Tests.Server;

/// <summary>The page at <c>/</c> in headless Chromium against a real server: paste, submit, see citations.</summary>
public sealed class ServerPageTests
{
    private static readonly CancellationToken Token = TestContext.Current.CancellationToken;

    // The sample passages as a person pastes them: paragraphs, each with a "# Title" first line.
    private static string Pasted() => string.Join("\n\n", RunningServer.Passages.Select(p =>
    {
        var passage = JsonNode.Parse(p.ToString()!)!;
        return $"# {passage["title"]}\n{passage["text"]}";
    }));

    /// <summary>How many passage share lines the routes view shows ("[N] S% of the flow"), and the one with the largest share.</summary>
    internal static (int Count, string Top) Shares(IWebDriver browser)
    {
        var lines = browser.FindElements(By.CssSelector("#shares div")).Select(d => d.Text).ToList();
        return (lines.Count, lines.MaxBy(s => double.Parse(s.Split(' ')[1].TrimEnd('%'), System.Globalization.CultureInfo.InvariantCulture))!);
    }

    private static void Fill(IWebDriver browser, string passages, string question, string answer)
    {
        browser.FindElement(By.Id("passages")).SendKeys(passages);
        browser.FindElement(By.Id("question")).SendKeys(question);
        browser.FindElement(By.Id("answer")).SendKeys(answer);
        browser.FindElement(By.Id("cite")).Click();
    }

    // Waits for the citation view to appear in the frame (or for the page to report an error).
    private static void AwaitView(IWebDriver browser)
    {
        new WebDriverWait(browser, TimeSpan.FromSeconds(120)).Until(b =>
            b.FindElement(By.Id("status")).Text is var status && status.Length > 0 && status != "working..."
                ? throw new Xunit.Sdk.XunitException($"The page reported: {status}")
                : !string.IsNullOrEmpty(b.FindElement(By.Id("view")).GetAttribute("srcdoc")));
        browser.SwitchTo().Frame(browser.FindElement(By.Id("view")));
    }

    [Fact]
    public async Task APastedAnswer_IsShownWithTheServersCitations_AndHighlightedPassageTokens()
    {
        await using var server = await RunningServer.StartAsync();
        var api = await server.PostAsync("/v1/citations", new { question = RunningServer.Question, passages = RunningServer.Passages, answer = RunningServer.Answer });
        Assert.Equal(HttpStatusCode.OK, api.StatusCode);
        var expected = JsonNode.Parse(await api.Content.ReadAsStringAsync(Token))!["sentences"]!.AsArray()
            .SelectMany(s => s!["citations"]!.AsArray().Select(c => $"[{c!["passage_index"]!.GetValue<int>() + 1}]")).ToList();
        Assert.NotEmpty(expected);

        using var browser = HeadlessChromium.Start();
        browser.Navigate().GoToUrl(new Uri(server.Address, "/"));
        Assert.Equal("Mirage", browser.Title);
        Fill(browser, Pasted(), RunningServer.Question, RunningServer.Answer);
        AwaitView(browser);

        Assert.Equal(RunningServer.Answer.Split(". ").Length, browser.FindElements(By.CssSelector(".answer .sentence")).Count);
        Assert.Equal(expected, browser.FindElements(By.CssSelector("a.cite")).Select(a => a.Text).ToList());
        Assert.Equal(4, browser.FindElements(By.CssSelector("article")).Count);
        // A passage shows its own text, not the prompt's "Document [1](Title: ...):" scaffolding.
        var shownPassages = browser.FindElements(By.CssSelector("article p")).Select(p => p.Text).ToList();
        Assert.Equal(RunningServer.Passages.Select(p => JsonNode.Parse(p.ToString()!)!["text"]!.GetValue<string>()), shownPassages);
        // Passage tokens are painted by how much the selected answer tokens relied on them.
        var painted = browser.FindElements(By.CssSelector(".tok")).Count(t => t.GetCssValue("background-color") is var c && c.StartsWith("rgba(26, 95, 208", StringComparison.Ordinal) && !c.EndsWith(", 0)", StringComparison.Ordinal));
        Assert.True(painted > 0, "no passage token is highlighted");
    }

    [Fact]
    public async Task Routes_DrawTheGraphWithPassagesShaded_FollowTheSlider_ShowANodesLens_AndTraceAClickedToken()
    {
        await using var server = await RunningServer.StartAsync();
        using var browser = HeadlessChromium.Start();
        browser.Navigate().GoToUrl(new Uri(server.Address, "/"));
        var script = (IJavaScriptExecutor)browser;
        // Script errors and policy violations the page would only log to its console.
        script.ExecuteScript("window.problems = []; window.addEventListener('error', e => problems.push(e.message)); document.addEventListener('securitypolicyviolation', e => problems.push('CSP: ' + e.violatedDirective));");
        Fill(browser, Pasted(), RunningServer.Question, RunningServer.Answer);
        AwaitView(browser);
        browser.SwitchTo().DefaultContent();
        var sentence = browser.FindElement(By.Id("sentence"));
        sentence.Clear();
        sentence.SendKeys("2");
        browser.FindElement(By.Id("routes")).Click();
        var wait = new WebDriverWait(browser, TimeSpan.FromSeconds(120));
        wait.Until(b => b.FindElement(By.Id("status")).Text is var status && status.Length > 0 && status != "tracing..."
            ? throw new Xunit.Sdk.XunitException($"The page reported: {status}")
            : b.FindElements(By.CssSelector("#graph circle")).Count > 0);

        int edges = browser.FindElements(By.CssSelector("#graph line")).Count;
        Assert.True(edges > 0);
        Assert.NotEmpty(browser.FindElements(By.CssSelector("#graph rect.passage")));
        var (passages, top) = Shares(browser);
        Assert.Equal(4, passages);
        // The birthplace sentence's flow starts mostly at passage 4, which states it.
        Assert.StartsWith("[4]", top);

        browser.FindElement(By.CssSelector("#graph circle.node.I")).Click();
        wait.Until(b => b.FindElements(By.CssSelector("#lens li")).Count > 0);
        Assert.EndsWith(": logit lens", browser.FindElement(By.CssSelector("#lens h3")).Text);
        // An attention node shows its heads, an FFN node what it promotes and its top neurons.
        browser.FindElement(By.CssSelector("#graph circle.node.A")).Click();
        wait.Until(b => b.FindElements(By.CssSelector("#lens .heads li")).Count > 0);
        Assert.StartsWith("head ", browser.FindElement(By.CssSelector("#lens .heads li")).Text);
        browser.FindElement(By.CssSelector("#graph circle.node.M")).Click();
        wait.Until(b => b.FindElements(By.CssSelector("#lens .neurons li")).Count == 5);
        Assert.StartsWith("#", browser.FindElement(By.CssSelector("#lens .neurons li")).Text);

        script.ExecuteScript("const t = document.getElementById('threshold'); t.value = '0.3'; t.dispatchEvent(new Event('input'));");
        Assert.InRange(browser.FindElements(By.CssSelector("#graph line")).Count, 1, edges - 1);

        // The answer's tokens are listed, the traced sentence's pressed; a click traces one token alone.
        var tokens = browser.FindElements(By.CssSelector("#tokens button"));
        Assert.Equal(" Lousdrur Rourti works for Cimgun Labs. Lousdrur Rourti was born in Grouscelford.", string.Concat(tokens.Select(b => b.GetDomProperty("textContent"))));
        Assert.Equal(7, tokens.Count(b => b.GetAttribute("aria-pressed") == "true"));
        tokens.Single(b => b.GetDomProperty("textContent") == " Grouscelford").Click();
        wait.Until(b => b.FindElements(By.CssSelector("#tokens button[aria-pressed='true']")) is { Count: 1 } pressed && pressed[0].GetDomProperty("textContent") == " Grouscelford");
        // What the model predicts there comes mostly from passage 3, whose similar name was born elsewhere.
        Assert.StartsWith("[3]", Shares(browser).Top);
        Assert.Equal("[]", script.ExecuteScript("return JSON.stringify(window.problems);"));
    }

    [Fact]
    public async Task WithNoAnswer_TheModelAnswers_AndTheAnswerIsCited()
    {
        await using var server = await RunningServer.StartAsync();
        using var browser = HeadlessChromium.Start();
        browser.Navigate().GoToUrl(new Uri(server.Address, "/"));
        Fill(browser, Pasted(), RunningServer.Question, "");
        AwaitView(browser);
        var shown = string.Concat(browser.FindElements(By.CssSelector(".answer .sentence")).Select(s => s.Text));
        browser.SwitchTo().DefaultContent();
        var answer = browser.FindElement(By.Id("answer")).GetAttribute("value");
        Assert.Contains("Lousdrur Rourti", answer);
        Assert.Equal(answer!.Replace(" ", ""), shown.Replace(" ", ""));
    }

    [Fact]
    public async Task ABadRequest_IsReportedOnThePage_AndThePreviousResultIsCleared()
    {
        await using var server = await RunningServer.StartAsync("--Server:MaxPassages=3");
        using var browser = HeadlessChromium.Start();
        browser.Navigate().GoToUrl(new Uri(server.Address, "/"));
        var three = string.Join("\n\n", Pasted().Split("\n\n").Take(3));
        Fill(browser, three, RunningServer.Question, RunningServer.Answer);
        AwaitView(browser);
        browser.SwitchTo().DefaultContent();
        browser.FindElement(By.Id("passages")).SendKeys("\n\n# Fourth\nLousdrur Rourti was born in Grouscelford.");
        browser.FindElement(By.Id("cite")).Click();
        var status = new WebDriverWait(browser, TimeSpan.FromSeconds(60)).Until(b => b.FindElement(By.Id("status")).Text is var s && s.Length > 0 && s != "working..." ? s : null);
        Assert.Contains("Invalid request", status);
        Assert.Contains("at most 3", status);
        Assert.Equal("", browser.FindElement(By.Id("view")).GetAttribute("srcdoc"));
    }
}
