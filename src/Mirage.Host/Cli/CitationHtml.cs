using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Mirage.Core.Citations;
using Mirage.Core.Flow;

namespace Mirage.Host.Cli;

/// <summary>
/// A self-contained HTML page for a citation result: the answer with clickable citations, a bar
/// per answer token showing its CTI score against the threshold, and the passages with the tokens
/// the model relied on highlighted by their CCI score (all selected tokens, or the one clicked).
/// With every answer token's routes (<see cref="PassageRoutes.TraceEveryToken"/>), it also draws the
/// routes of the token clicked (<see cref="RoutesView"/>).
/// </summary>
internal static class CitationHtml
{
    // The embedded data: compact, and with the default encoder, which escapes '<' (no "</script>" inside).
    private static readonly JsonSerializerOptions Compact = new(MirageJson.Options) { WriteIndented = false };

    public static string Render(CitationResult result, IReadOnlyList<PassageRoutes>? routes = null)
    {
        var html = new StringBuilder();
        html.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Mirage citations</title><style>")
            .Append(Style).Append(RoutesView.Style)
            .Append("</style></head><body><main>");
        html.Append("<header><h1>Mirage citations</h1><p class=\"meta\">")
            .Append(Encode($"{result.ModelId} · {result.Options.MethodName} · CTI {result.Options.Pecore.CtiMetric} ({result.Options.Pecore.KlDirection}) · filter {result.Options.Filter} · "
                + $"{result.Cost.ForwardPasses} forward / {result.Cost.BackwardPasses} backward passes · {result.Cost.TotalMs / 1000:F2} s"))
            .Append("</p></header>");

        if (!string.IsNullOrEmpty(result.Question))
            html.Append("<section><h2>Question</h2><p>").Append(Encode(result.Question)).Append("</p></section>");

        html.Append("<section><h2>Answer</h2><p class=\"answer\">");
        int cursor = 0;
        foreach (var sentence in result.Sentences)
        {
            html.Append(Encode(result.Answer[cursor..sentence.Start]));
            html.Append($"<span class=\"sentence\" data-sentence=\"{sentence.Index}\">").Append(Encode(sentence.Text)).Append("</span>");
            foreach (var c in sentence.Citations)
                html.Append($"<a class=\"cite\" href=\"#passage-{c.PassageIndex + 1}\" title=\"{Encode(c.PassageId)} · score {c.Score.ToString("G3", CultureInfo.InvariantCulture)}\">[{c.PassageIndex + 1}]</a>");
            if (sentence.Support is { } support)
                html.Append($"<span class=\"{(support.Verified ? "verified" : "unverified")}\" title=\"{Encode(FormattableString.Invariant($"necessity {support.Necessity:F2} nats, sufficiency {support.Sufficiency:F2} nats"))}\">{(support.Verified ? "verified" : "unverified")}</span>");
            cursor = sentence.End;
        }
        html.Append(Encode(result.Answer[cursor..])).Append("</p></section>");

        html.Append("<section><h2>Context sensitivity per answer token</h2><p class=\"hint\">Bar height: CTI score; the line is the selection threshold. Click a selected (dark) token to see the passage tokens it relied on (with ablation: the passages whose removal lowers its sentence); click again for all.</p><div class=\"bars\">");
        double top = Math.Max(result.CtiThreshold, result.Tokens.Select(t => Math.Abs(t.Cti)).DefaultIfEmpty(0).Max());
        if (top <= 0 || double.IsInfinity(top))
            top = 1;
        foreach (var token in result.Tokens)
        {
            double height = Math.Abs(token.Cti) / top * 100;
            html.Append($"<div class=\"bar{(token.Selected ? " selected" : "")}\" data-token=\"{token.Index}\" title=\"{Encode($"{token.Text} · CTI {token.Cti:G4} · no-context model preferred '{token.ContrastText}'")}\">")
                .Append($"<div class=\"fill\" style=\"height:{height.ToString("F1", CultureInfo.InvariantCulture)}%\"></div><div class=\"label\">{Encode(token.Text)}</div></div>");
        }
        html.Append($"<div class=\"threshold\" style=\"bottom:calc({(result.CtiThreshold / top * 100).ToString("F1", CultureInfo.InvariantCulture)}% * 0.8 + 1.6em)\"></div></div></section>");

        if (routes is { Count: > 0 })
            html.Append("<section><h2>Why: information-flow routes</h2><p class=\"hint\">The routes from the prompt to the output that predicts the answer token pressed below: layers bottom to top, passages shaded, edges as wide as their contribution. Click a token to see its routes, a node for its logit lens (an attention node: its heads; an FFN node: its top neurons).</p>")
                .Append(RoutesView.Markup).Append("</section>");

        html.Append("<section><h2>Passages</h2>");
        var spans = result.Inputs.PromptTokenSpans;
        foreach (var passage in result.Passages)
        {
            html.Append($"<article id=\"passage-{passage.Index + 1}\"><h3>[{passage.Index + 1}] ").Append(Encode(passage.Title ?? passage.Id));
            if (passage.Url is not null)
                html.Append(IsLinkable(passage.Url)
                    ? $" <a href=\"{Encode(passage.Url)}\" target=\"_blank\" rel=\"noopener noreferrer nofollow\">source</a>"
                    : $" <span class=\"url\">{Encode(passage.Url)}</span>");
            html.Append("</h3><p>");
            // The passage's own text, not the prompt's scaffolding around it ("Document [1](Title: ...): "):
            // each token is clipped to the text, and the characters between tokens are shown plain.
            var prompt = result.Inputs.WithContextPrompt;
            int shown = passage.TextStart;
            for (int j = passage.TokenStart; j < passage.TokenEnd; j++)
            {
                int start = Math.Max(spans[j][0], shown), end = Math.Min(spans[j][1], passage.TextEnd);
                if (end <= start)
                    continue;
                html.Append(Encode(prompt[shown..start]))
                    .Append($"<span class=\"tok\" data-pos=\"{j}\">").Append(Encode(prompt[start..end])).Append("</span>");
                shown = end;
            }
            html.Append(Encode(prompt[shown..passage.TextEnd])).Append("</p></article>");
        }
        // The scores travel as a JSON data block (never executed; the default encoder escapes '<'), so the
        // one script is constant and a Content-Security-Policy can allow exactly it by hash.
        html.Append("</section></main><script type=\"application/json\" id=\"cues\">")
            .Append(JsonSerializer.Serialize(Shading(result)))
            .Append("</script>");
        if (routes is { Count: > 0 })
            html.Append("<script type=\"application/json\" id=\"routes-data\">").Append(JsonSerializer.Serialize(RoutesData(routes), Compact)).Append("</script>");
        html.Append("<script>").Append(Script).Append("</script></body></html>");
        return html.ToString();
    }

    // What the passages are shaded by, per answer token: its CCI scores, or with ablation, each
    // passage's leave-one-out drop for the token's sentence spread over the passage's tokens (ablation
    // measures passages, not their tokens), and with evidence, each cited passage's sentences by
    // their own drops.
    private static Dictionary<string, float[]> Shading(CitationResult result)
    {
        if (result.Ablation is not { } ablation)
            return result.Cues.ToDictionary(c => c.TokenIndex.ToString(CultureInfo.InvariantCulture), c => c.Scores);
        var shading = new Dictionary<string, float[]>();
        foreach (var sentence in ablation)
        {
            var scores = new float[result.Inputs.PromptTokenSpans.Count];
            foreach (var passage in result.Passages)
                Array.Fill(scores, (float)Math.Max(0, sentence.PassageDrops[passage.Index]), passage.TokenStart, passage.TokenEnd - passage.TokenStart);
            foreach (var citation in result.Sentences[sentence.Sentence].Citations.Where(c => c.Evidence is not null))
            {
                var passage = result.Passages[citation.PassageIndex];
                for (int j = passage.TokenStart; j < passage.TokenEnd; j++)
                {
                    // A token belongs to the evidence sentence holding its first character; tokens of other sentences go blank.
                    int at = result.Inputs.PromptTokenSpans[j][0] - passage.TextStart;
                    scores[j] = (float)Math.Max(0, citation.Evidence!.FirstOrDefault(e => at >= e.Start && at < e.End)?.Drop ?? 0);
                }
            }
            foreach (var token in sentence.Tokens)
                shading[token.ToString(CultureInfo.InvariantCulture)] = scores;
        }
        return shading;
    }

    // Every token's trace with the sequence's tokens once and the node views merged: a node's views
    // are the same in every trace of one pass.
    private static object RoutesData(IReadOnlyList<PassageRoutes> routes)
    {
        static Dictionary<string, T> Merged<T>(IEnumerable<IReadOnlyDictionary<string, T>> views)
        {
            var merged = new Dictionary<string, T>(StringComparer.Ordinal);
            foreach (var (id, view) in views.SelectMany(v => v))
                merged.TryAdd(id, view);
            return merged;
        }
        return new
        {
            tokens = routes[0].Tokens,
            answer_start = routes[0].AnswerStart,
            traces = routes.Select(r => new { answer_tokens = r.AnswerTokens, graph = r.Graph, passages = r.Passages, lens = r.Lens }),
            node_lens = Merged(routes.Select(r => r.NodeLens)),
            node_heads = Merged(routes.Select(r => r.NodeHeads)),
            node_neurons = Merged(routes.Select(r => r.NodeNeurons)),
        };
    }

    /// <summary>
    /// The Content-Security-Policy for a served result page: its own script (by hash) and inline
    /// styles, nothing loaded, no plugins or forms, and no framing by other sites.
    /// </summary>
    public static string ContentSecurityPolicy { get; } =
        $"default-src 'none'; script-src '{ScriptHash(Script)}'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    /// <summary>The CSP source for one inline script: <c>sha256-BASE64</c> of its UTF-8 text.</summary>
    public static string ScriptHash(string script) =>
        "sha256-" + Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(script)));

    /// <summary>
    /// Whether a passage URL may become a link: absolute http or https only. Passage URLs come from
    /// retrieved documents, which an attacker may write; <c>javascript:</c>, <c>data:</c> and the
    /// like are shown as text, whatever their case or surrounding whitespace.
    /// </summary>
    public static bool IsLinkable(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
        && url == url.Trim() && !url.Any(char.IsControl);

    private static string Encode(string text) => WebUtility.HtmlEncode(text);

    private const string Style = """
        body{font:16px/1.55 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2430}
        main{max-width:980px;margin:0 auto;padding:24px}
        header h1{margin:0 0 4px;font-size:24px}.meta,.hint{color:#5b6675;font-size:13px}
        section{background:#fff;border:1px solid #e3e6eb;border-radius:10px;padding:16px 20px;margin:16px 0}
        h2{font-size:15px;text-transform:uppercase;letter-spacing:.04em;color:#5b6675;margin:0 0 8px}
        .answer{font-size:18px}.sentence{border-radius:4px}.sentence:hover{background:#fff4c2}
        .verified,.unverified{font-size:11px;margin-left:4px;padding:0 4px;border-radius:3px}.verified{background:#e3f4e1;color:#1d6b1a}.unverified{background:#fde2e1;color:#a3211b}
        a.cite{font-size:13px;vertical-align:super;margin-left:1px;color:#1a5fd0;text-decoration:none;font-weight:600}
        .bars{position:relative;display:flex;align-items:flex-end;gap:3px;height:150px;padding-bottom:0;overflow-x:auto}
        .bar{display:flex;flex-direction:column;justify-content:flex-end;align-items:center;height:100%;min-width:22px;cursor:default}
        .bar .fill{width:70%;background:#c7cfdb;border-radius:3px 3px 0 0;max-height:80%}
        .bar.selected .fill{background:#1a5fd0}.bar.selected{cursor:pointer}.bar.active .fill{background:#e0661b}
        .bar .label{font-size:11px;white-space:nowrap;height:1.6em;color:#3b4452}
        .threshold{position:absolute;left:0;right:0;border-top:1px dashed #e0661b}
        article{border-top:1px solid #eef0f3;padding-top:8px}article:target{background:#fffbe6}
        h3{font-size:15px;margin:6px 0}.tok{border-radius:3px}
        """;

    /// <summary>The page's one script; it reads the scores from the <c>cues</c> data block, and the routes from <c>routes-data</c> where there is one.</summary>
    public const string Script = RoutesView.Script + """
        const cues = JSON.parse(document.getElementById('cues').textContent);
        const toks = [...document.querySelectorAll('.tok')];
        function paint(keys){
          const score = new Map();
          for (const k of keys) (cues[k]||[]).forEach((v,j)=>score.set(j,(score.get(j)||0)+v));
          const inPassages = toks.map(t=>score.get(+t.dataset.pos)||0);
          const max = Math.max(1e-12,...inPassages);
          toks.forEach((t,i)=>{const a=inPassages[i]/max;t.style.background=`rgba(26,95,208,${(a*a*0.85).toFixed(3)})`;t.style.color=a>0.6?'#fff':'';t.title=inPassages[i].toPrecision(3);});
        }
        let active=null;
        document.querySelectorAll('.bar.selected').forEach(b=>b.addEventListener('click',()=>{
          document.querySelectorAll('.bar').forEach(x=>x.classList.remove('active'));
          if(active===b.dataset.token){active=null;paint(Object.keys(cues));return;}
          active=b.dataset.token;b.classList.add('active');paint([active]);
        }));
        paint(Object.keys(cues));
        const routesData = document.getElementById('routes-data');
        if (routesData) {
          const all = JSON.parse(routesData.textContent);
          const show = k => {
            routes = { ...all.traces[k], tokens: all.tokens, answer_start: all.answer_start, node_lens: all.node_lens, node_heads: all.node_heads, node_neurons: all.node_neurons };
            draw();
            showTokens(show);
            $('lens').replaceChildren();
          };
          show(0);
        }
        """;
}
