namespace Mirage.Host.Server;

/// <summary>
/// The page at <c>/</c>: paste passages, a question and an answer (or let the model answer), and
/// see the answer with its citations and the highlighted passage tokens, in the same view as
/// <c>mirage cite --format html</c> (the server renders it; the page shows it in a sandboxed frame,
/// so nothing in a result, such as a hostile passage URL, can reach this page or the API key typed here).
/// Under the form, "Show routes" draws why a sentence cites what it cites (<c>/v1/flow</c>), and a
/// click on one of the answer's tokens listed under it does so for that token: the
/// routes graph as layers x tokens, passages shaded, edge width by contribution, a threshold slider,
/// and a node's logit lens on click (an attention node: its heads and what each promotes; an FFN
/// node: what it promotes and its top neurons). The graph is built with DOM calls and text nodes only, so no
/// passage text is ever parsed as markup.
/// </summary>
internal static class ServerPage
{
    /// <summary>The page.</summary>
    public static string Html { get; } = Head + "<script>" + Script + "</script>" + Tail;

    /// <summary>
    /// The page's Content-Security-Policy. A <c>srcdoc</c> frame inherits its parent's policy, so the
    /// result view's script is allowed by its hash as well; requests go to this server only.
    /// </summary>
    public static string ContentSecurityPolicy { get; } =
        $"default-src 'none'; script-src '{Cli.CitationHtml.ScriptHash(Script)}' '{Cli.CitationHtml.ScriptHash(Cli.CitationHtml.Script)}'; "
        + "style-src 'unsafe-inline'; connect-src 'self'; frame-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private const string Head = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>Mirage</title>
        <style>
          body { font: 15px/1.5 system-ui, sans-serif; margin: 0; display: grid; grid-template-columns: minmax(320px, 34%) 1fr; height: 100vh; }
          form { padding: 16px; border-right: 1px solid #ddd; overflow: auto; }
          label { display: block; font-weight: 600; margin-top: 12px; }
          textarea, input { width: 100%; box-sizing: border-box; font: 13px ui-monospace, monospace; }
          button { margin: 14px 8px 0 0; padding: 6px 14px; }
          #status { color: #a33; margin-top: 10px; white-space: pre-wrap; }
          iframe { width: 100%; height: 100%; border: 0; }
        """ + "\n" + Cli.RoutesView.Style + "\n" + """
        </style>
        </head>
        <body>
        <form id="form">
          <h1>Mirage</h1>
          <label for="passages">Passages (one per paragraph; an optional first line "# Title")</label>
          <textarea id="passages" rows="14" required></textarea>
          <label for="question">Question</label>
          <input id="question" required>
          <label for="answer">Answer (leave empty to let the model answer)</label>
          <textarea id="answer" rows="4"></textarea>
          <label for="key">API key (if the server needs one)</label>
          <input id="key" type="password" autocomplete="off">
          <button id="cite" type="submit">Cite</button>
          <div id="status" role="status"></div>
          <h2>Why</h2>
          <label for="sentence">Answer sentence to explain (from 1)</label>
          <input id="sentence" type="number" min="1" value="1">
          <button id="routes" type="button">Show routes</button>
        """ + "\n" + Cli.RoutesView.Markup + "\n" + """
        </form>
        <iframe id="view" title="Citations" sandbox="allow-scripts allow-popups allow-popups-to-escape-sandbox"></iframe>
        """;

    private const string Script = Cli.RoutesView.Script + """
        function passages() {
          return $("passages").value.split(/\n\s*\n/).map(p => p.trim()).filter(p => p).map((p, i) => {
            const lines = p.split("\n");
            return lines[0].startsWith("# ") ? { id: String(i + 1), title: lines[0].slice(2), text: lines.slice(1).join(" ") } : { id: String(i + 1), text: p };
          });
        }
        async function call(url, body) {
          const headers = { "Content-Type": "application/json" };
          if ($("key").value) headers["Authorization"] = "Bearer " + $("key").value;
          const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
          if (!response.ok) {
            const problem = await response.json().catch(() => ({}));
            throw new Error((problem.title || response.status) + ": " + (problem.detail || response.statusText));
          }
          return response;
        }
        async function trace(target) {
          $("status").textContent = "tracing...";
          try {
            const body = { question: $("question").value, passages: passages(), answer: $("answer").value.trim(), ...target };
            routes = await (await call("/v1/flow", body)).json();
            draw();
            showTokens(k => trace({ token: k }));
            $("lens").replaceChildren();
            $("status").textContent = "";
          } catch (error) {
            routes = null;
            for (const id of ["graph", "tokens", "shares", "lens"]) $(id).replaceChildren();
            $("status").textContent = error.message;
          }
        }
        $("routes").addEventListener("click", () => trace({ sentence: Number($("sentence").value) - 1 }));
        $("form").addEventListener("submit", async event => {
          event.preventDefault();
          $("status").textContent = "working...";
          try {
            const docs = passages(), question = $("question").value;
            let answer = $("answer").value.trim();
            if (!answer) {
              const completion = await (await call("/v1/chat/completions", { messages: [{ role: "user", content: question }], passages: docs })).json();
              answer = completion.choices[0].message.content;
              $("answer").value = answer;
            }
            const html = await (await call("/v1/citations?format=html", { question, passages: docs, answer })).text();
            $("view").srcdoc = html;
            $("status").textContent = "";
          } catch (error) {
            $("view").srcdoc = "";
            $("status").textContent = error.message;
          }
        });
        """;

    private const string Tail = """
        </body>
        </html>
        """;
}
