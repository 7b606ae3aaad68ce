namespace Mirage.Host.Cli;

/// <summary>
/// The routes view that the page at <c>/</c> and the HTML report share: a routes graph
/// (<c>/v1/flow</c>'s JSON) drawn as layers x tokens in SVG, passages shaded, edge width by
/// contribution, a threshold slider, each passage's share, the answer's tokens as buttons, and a
/// node's logit lens, heads or top neurons on click. Everything is built with DOM calls and text
/// nodes, so no token or passage text is parsed as markup. The script draws the global
/// <c>routes</c>, which the page fills from the server and the report from its embedded data.
/// </summary>
internal static class RoutesView
{
    /// <summary>The view's styles, for a page's style element.</summary>
    public const string Style = """
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
        """;

    /// <summary>The view's elements: slider, tokens, shares, graph and lens.</summary>
    public const string Markup = """
          <label for="threshold">Hide edges at or below <output id="thresholdValue">0.04</output></label>
          <input id="threshold" type="range" min="0.04" max="0.5" step="0.01" value="0.04">
          <div id="tokens" aria-label="Answer tokens: click one to trace it alone"></div>
          <div id="shares"></div>
          <div id="graph"></div>
          <div id="lens"></div>
        """;

    /// <summary>The view's functions (<c>draw</c>, <c>showLens</c>, <c>showTokens</c>) and the slider's handler; ends with a newline.</summary>
    public const string Script = """
        const $ = id => document.getElementById(id);
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
        // A report without routes has no slider.
        $("threshold")?.addEventListener("input", () => {
          $("thresholdValue").textContent = $("threshold").value;
          if (routes) draw();
        });
        // The answer's tokens, pressed where traced; clicking one calls onClick with its index.
        function showTokens(onClick) {
          $("tokens").replaceChildren(...routes.tokens.slice(routes.answer_start).map((text, k) => {
            const button = document.createElement("button");
            button.type = "button";
            button.textContent = text;
            button.setAttribute("aria-pressed", String(routes.answer_tokens.includes(k)));
            button.addEventListener("click", () => onClick(k));
            return button;
          }));
        }

        """;
}
