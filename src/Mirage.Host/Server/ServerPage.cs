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
          #graph { overflow: auto; max-height: 420px; border: 1px solid #eee; margin-top: 8px; }
          #graph .edge { stroke: #1a5fd0; stroke-opacity: 0.45; }
          #graph .node { fill: #fff; stroke: #333; cursor: pointer; }
          #graph .node.M { fill: #f4b400; }
          #graph .node.X0 { fill: #333; }
          #graph .passage { fill: #fff4cc; }
          #graph text { font: 10px ui-monospace, monospace; }
          #shares div, #lens li { font: 13px ui-monospace, monospace; }
          #tokens button { margin: 4px 2px 0 0; padding: 1px 4px; font: 13px ui-monospace, monospace; white-space: pre; }
          #tokens button[aria-pressed="true"] { background: #1a5fd0; color: #fff; }
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
          <label for="threshold">Hide edges at or below <output id="thresholdValue">0.04</output></label>
          <input id="threshold" type="range" min="0.04" max="0.5" step="0.01" value="0.04">
          <div id="tokens" aria-label="Answer tokens: click one to trace it alone"></div>
          <div id="shares"></div>
          <div id="graph"></div>
          <div id="lens"></div>
        </form>
        <iframe id="view" title="Citations" sandbox="allow-scripts allow-popups allow-popups-to-escape-sandbox"></iframe>
        """;

    private const string Script = """
        const $ = id => document.getElementById(id);
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
        const SVG = "http://www.w3.org/2000/svg";
        let routes = null;
        function svg(name, attributes, parent) {
          const element = document.createElementNS(SVG, name);
          for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
          parent.appendChild(element);
          return element;
        }
        function line(text) {
          const div = document.createElement("div");
          div.textContent = text;
          return div;
        }
        function showLens(node) {
          const title = document.createElement("h3");
          title.textContent = node.id + (node.kind === "M" ? ": what the FFN block promotes" : ": logit lens");
          const list = document.createElement("ol");
          for (const token of routes.node_lens[node.id] || []) {
            const item = document.createElement("li");
            item.textContent = JSON.stringify(token.text) + " " + token.value.toFixed(3);
            list.appendChild(item);
          }
          const parts = [title, list];
          // A node's heads (attention) or top neurons (FFN), each with its share and what it promotes.
          const ranked = (heading, className, entries, name) => {
            if (!entries) return;
            const title = document.createElement("h3");
            title.textContent = heading;
            const list = document.createElement("ol");
            list.className = className;
            for (const entry of entries) {
              const item = document.createElement("li");
              item.textContent = `${name(entry)} ${(100 * entry.contribution).toFixed(1)}%, promotes ` + entry.promotes.map(t => JSON.stringify(t.text)).join(" ");
              list.appendChild(item);
            }
            parts.push(title, list);
          };
          ranked("Heads", "heads", routes.node_heads[node.id], h => `head ${h.head}`);
          ranked("Top neurons", "neurons", routes.node_neurons[node.id], n => `#${n.neuron}`);
          $("lens").replaceChildren(...parts);
        }
        function draw() {
          const limit = Number($("threshold").value), graph = routes.graph;
          const edges = graph.edges.filter(e => e.weight > limit);
          const used = new Set(edges.flatMap(e => [e.from, e.to]));
          const nodes = graph.nodes.filter(n => used.has(n.id));
          const byId = new Map(nodes.map(n => [n.id, n]));
          const columns = [...new Set(nodes.map(n => n.token))].sort((a, b) => a - b);
          const column = new Map(columns.map((t, i) => [t, i]));
          const rows = 2 * graph.layers + 1, w = 46, h = 40, top = 16, bottom = 70;
          const level = n => n.kind === "X0" ? 0 : 2 * n.layer + (n.kind === "A" ? 1 : 2);
          const at = n => [24 + column.get(n.token) * w + (n.kind === "M" ? w / 3 : 0), top + (rows - 1 - level(n)) * h + (n.kind === "M" ? h / 2 : 0)];
          const width = 48 + columns.length * w, height = top + rows * h + bottom;
          const picture = document.createElementNS(SVG, "svg");
          picture.setAttribute("width", width);
          picture.setAttribute("height", height);
          for (const passage of routes.passages) {
            const inside = columns.filter(t => t >= passage.token_start && t < passage.token_end);
            if (inside.length === 0) continue;
            const first = column.get(inside[0]), last = column.get(inside[inside.length - 1]);
            svg("rect", { x: 24 + first * w - w / 2, y: 0, width: (last - first + 1) * w, height: height - bottom + 8, class: "passage", "data-passage": passage.id }, picture);
          }
          for (const edge of edges) {
            const [x1, y1] = at(byId.get(edge.from)), [x2, y2] = at(byId.get(edge.to));
            svg("line", { x1, y1, x2, y2, "stroke-width": (0.5 + 6 * edge.weight).toFixed(2), class: "edge" }, picture);
          }
          for (const node of nodes) {
            const [cx, cy] = at(node);
            const circle = svg("circle", { cx, cy, r: node.kind === "M" ? 4 : 6, class: "node " + node.kind, "data-node": node.id }, picture);
            svg("title", {}, circle).textContent = node.id;
            circle.addEventListener("click", () => showLens(node));
          }
          for (const t of columns) {
            const label = svg("text", { x: 24 + column.get(t) * w, y: height - bottom + 20, "text-anchor": "end", transform: `rotate(-45 ${24 + column.get(t) * w} ${height - bottom + 20})` }, picture);
            label.textContent = routes.tokens[t];
          }
          $("graph").replaceChildren(picture);
          $("shares").replaceChildren(...routes.passages.map(p => line(`[${p.index + 1}] ${(100 * p.share).toFixed(1)}% of the flow`)));
        }
        $("threshold").addEventListener("input", () => {
          $("thresholdValue").textContent = $("threshold").value;
          if (routes) draw();
        });
        // The answer's tokens, pressed where traced; clicking one traces that token alone.
        function showTokens() {
          $("tokens").replaceChildren(...routes.tokens.slice(routes.answer_start).map((text, k) => {
            const button = document.createElement("button");
            button.type = "button";
            button.textContent = text;
            button.setAttribute("aria-pressed", String(routes.answer_tokens.includes(k)));
            button.addEventListener("click", () => trace({ token: k }));
            return button;
          }));
        }
        async function trace(target) {
          $("status").textContent = "tracing...";
          try {
            const body = { question: $("question").value, passages: passages(), answer: $("answer").value.trim(), ...target };
            routes = await (await call("/v1/flow", body)).json();
            draw();
            showTokens();
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
