"""Render the course notebooks as static HTML pages with their outputs, without Quarto.

    python tools/render_pages.py [NOTEBOOK ...] [--fast] [--out site] [--threads 2]

Each notebook is copied into `OUT/_build/` (with the rest of `nbs/`, so relative paths such as `runs/` resolve), run
there top to bottom by `nbdev.test.test_nb(save=True)` in a fresh process (nbdev's skip flags respected), then
converted with nbconvert's HTML exporter (no `--execute`). The sources in `nbs/` are never modified. Before the run,
the copy of each notebook that exports a module gets its API reference: a `show_doc` cell for each public function
and class its exported cells define (found by nbdev's `add_show_docs` processor) and for each public method of those
classes, under its '## API reference' heading after the lesson (`add_api_reference`). The notebooks keep no
reference of their own, so it cannot go stale; `nbdev-docs` (Quarto) adds nbdev's own after each definition. As on the Quarto
site, `nbs/index.ipynb` becomes `OUT/index.html`; `OUT/pages.html` lists the pages with their run times, marking any
notebook that failed to run. Where Quarto is installed, `nbdev-docs` builds the full site from `nbs/_quarto.yml`
instead.

The pages work offline (`file://`, no network): MathJax is copied from the `jupyter-server-mathjax` package into
`OUT/_static/mathjax/` (the `docs` extra declares it) instead of loading from a CDN, the lab template's require.js,
widget-renderer and mermaid loaders are left out, and each displayed ipywidget is replaced by a note ("interactive:
run the notebook") plus a static PNG of what the explorer showed when the page was built. Links to `NAME.ipynb` point
to `NAME.html`. `tests/test_pages.py` checks all of this in headless Chromium.
"""
import argparse, html, importlib, importlib.util, json, os, re, shutil, subprocess, sys, time, uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run one notebook top to bottom with nbdev's test_nb in a fresh process: `python -c RUNNER NOTEBOOK [SAVE]`, where
# SAVE is 1 (default: write the outputs back into NOTEBOOK) or 0. tools/time_notebooks.py and the tests use it too.
# Every ipywidget displayed in the run also gets an image/png representation (the PNG of the first `widgets.Image` in
# its tree), so the static page can show what the explorer showed; `to_html` swaps the widget itself for a note.
RUNNER = """
import sys
import nbdev.test
from nbdev.config import get_config
from nbdev.test import test_nb

def _widget_png(w):
    todo = [w]
    while todo:
        x = todo.pop(0)
        if type(x).__name__ == 'Image' and getattr(x, 'format', '') == 'png' and getattr(x, 'value', b''): return bytes(x.value)
        todo.extend(getattr(x, 'children', ()) or ())
    return None

class _Shell(nbdev.test.CaptureShell):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.display_formatter.formatters['image/png'].for_type_by_name('ipywidgets.widgets.widget', 'Widget', _widget_png)

nbdev.test.CaptureShell = _Shell
cfg = get_config()
ok, secs = test_nb(sys.argv[1], skip_flags=cfg.tst_flags.split(), basepath=str(cfg.config_path),
                   cell_timeout=int(cfg.get('cell_timeout', 600)), save=(sys.argv[2:] or ['1'])[0] == '1')
sys.exit(0 if ok else 1)
"""


API_HEADING = "## API reference"


def module_of(nb) -> str | None:
    "The module a notebook exports (its `#| default_exp`), from a path or a notebook dict; None if it exports none."
    cells = json.loads(Path(nb).read_text())["cells"] if isinstance(nb, (str, Path)) else nb["cells"]
    for c in cells:
        m = re.search(r"^#\|\s*default_exp\s+(\S+)", "".join(c["source"]), re.M) if c["cell_type"] == "code" else None
        if m: return m.group(1)
    return None


def api_entries(nb_path: Path) -> list[str]:
    "What a notebook's API reference documents: the public functions and classes its exported cells define (as nbdev's `add_show_docs` processor finds them), in the module's order, each class followed by its public methods."
    from nbdev.process import NBProcessor
    from nbdev.processors import add_show_docs
    mod = module_of(nb_path)
    if mod is None: return []
    proc = NBProcessor(str(nb_path), [add_show_docs])
    proc.process()
    found = [re.fullmatch(r"show_doc\((.+)\)", c.source).group(1) for c in proc.nb.cells if getattr(c, "has_sd", False)]
    m = importlib.import_module(f"tvae_nb.{mod}")
    order = {n: i for i, n in enumerate(vars(m))}                       # definition order in the module
    out = []
    for n in sorted({n for n in found if not n.startswith("_")}, key=lambda n: order.get(n, len(order))):
        out.append(n)
        o = getattr(m, n, None)
        if isinstance(o, type):                                           # and its methods (torch's `extra_repr` aside)
            out += [f"{n}.{k}" for k, v in vars(o).items() if not k.startswith("_") and k != "extra_repr"
                    and (isinstance(v, property) or callable(getattr(v, "__func__", v))) and not isinstance(v, type)]
    return out


def add_api_reference(nb_path: Path) -> int:
    "Write the API reference into the notebook at `nb_path` (a copy being rendered): a `show_doc` cell per `api_entries`, under its '## API reference' heading (added at the end if missing); returns how many."
    names = api_entries(nb_path)
    if not names: return 0
    nb = json.loads(Path(nb_path).read_text())
    cell = lambda kind, src: {"cell_type": kind, "id": uuid.uuid4().hex[:8], "metadata": {}, "source": src, **({"outputs": [], "execution_count": None} if kind == "code" else {})}
    head = next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown" and "".join(c["source"]).startswith(API_HEADING)), None)
    if head is None: nb["cells"].append(cell("markdown", API_HEADING)); head = len(nb["cells"]) - 1
    new = [cell("code", "#| hide\nfrom nbdev.showdoc import show_doc")] + [cell("code", f"show_doc({n})") for n in names]
    nb["cells"][head + 1:head + 1] = new
    Path(nb_path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return len(names)


def default_notebooks() -> list[Path]:
    "All course notebooks in nbs/ (not starting with '_'), sorted."
    return sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))


def title_of(nb_path: Path) -> str:
    "The notebook's H1 title (its first markdown line starting with '# '), or its file stem."
    nb = json.loads(nb_path.read_text())
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            for line in "".join(c["source"]).splitlines():
                if line.startswith("# "): return line[2:].strip()
    return nb_path.stem


MATHJAX_DROP = ("localization", "SVG", "a11y")       # not needed for TeX -> HTML-CSS in English: 12 MB -> 2.8 MB
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"   # the configs jupyter-server-mathjax ships (not nbconvert's CHTML one)
HIDE_INPUT = "tvae-echo-false"                      # nbdev's `#| echo: false`: show the outputs only
# nbdev's `#| code-fold: true` (as Quarto folds it): the code in a closed <details> above its outputs
FOLD = '<div class="jp-Cell tvae-fold-cell"><span class="tvae-fold-start"></span>{code}<span class="tvae-fold-end"></span></div>'
FOLD_TAGS = {'<span class="tvae-fold-start"></span>': '<details class="tvae-fold"><summary>the code of the result below</summary>',
             '<span class="tvae-fold-end"></span>': '</details>'}     # after the export: its sanitiser drops <details>


def _highlight(code: str) -> str:
    "Python source as highlighted HTML (`<div class=\"highlight\"><pre>…`), as nbconvert highlights a code cell."
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer
    return highlight(code, PythonLexer(), HtmlFormatter(cssclass="highlight"))
SHOW_DOC = re.compile(r"^show_doc", re.M)            # as nbdev's docs do, show only the output of `show_doc` cells
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ('<p class="tvae-widget-note"><em>Interactive: run the notebook to use this explorer. On this page, '
               '{what}.</em></p>')

# The lab template, offline: local MathJax (STIX-Web fonts, which jupyter-server-mathjax ships; without this
# configuration MathJax falls back to upright image-less fonts), no require.js, no widget renderer, no mermaid loader.
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
<script type="text/x-mathjax-config">
MathJax.Hub.Config({
    TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
    tex2jax: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
              processEscapes: true, processEnvironments: true},
    "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
                 linebreaks: {automatic: true}},
    displayAlign: "center",
    messageStyle: "none"
});
MathJax.Hub.Register.StartupHook("End", function () { document.body.setAttribute("data-mathjax", "typeset"); });
</script>
<script src="{{ resources.mathjax_url }}"></script>
{%- endblock html_head_js_mathjax -%}
"""


def mathjax_source() -> Path:
    "The MathJax 2 folder that the `jupyter-server-mathjax` package ships (found without importing jupyter_server)."
    spec = importlib.util.find_spec("jupyter_server_mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("jupyter-server-mathjax is not installed; it renders math offline: pip install -e '.[docs]'")
    src = Path(list(spec.submodule_search_locations)[0]) / "static"
    if not (src / "MathJax.js").exists(): raise RuntimeError(f"no MathJax.js in {src}")
    return src


def vendor_mathjax(out: Path) -> Path:
    "Copy MathJax (without localisations, the SVG output and a11y extensions) to `out/_static/mathjax`, once."
    dest = Path(out) / "_static" / "mathjax"
    if not (dest / "MathJax.js").exists():
        if dest.exists(): shutil.rmtree(dest)
        shutil.copytree(mathjax_source(), dest, ignore=shutil.ignore_patterns(*MATHJAX_DROP))
    return dest


def _widget_outputs(out: dict) -> list:
    "Replace a displayed ipywidget with a note and, where the run recorded one, the PNG the widget showed."
    import nbformat
    data = out.get("data", {})
    png = data.get("image/png")
    what = "this is what it showed when the page was built" if png else "it is not shown"
    outs = [nbformat.v4.new_output("display_data", {"text/html": WIDGET_NOTE.format(what=what)})]
    if png: outs.append(nbformat.v4.new_output("display_data", {"image/png": png, "text/plain": "<explorer figure>"}))
    return outs


_SHOWDOC_SOURCE = re.compile(r"\[source\]\(([^)\s]+)\)\{target=\"_blank\" style=\"([^\"]*)\"\}")


def _showdoc_markdown(out: dict) -> dict:
    "nbdev's `show_doc` links its source with pandoc attributes (`[source](url){target=...}`): write that link as HTML."
    md = out.get("data", {}).get("text/markdown")
    if md is None: return out
    md = "".join(md) if isinstance(md, list) else md
    fix = lambda m: f'<a href="{m[1].replace("#LNone", "")}" target="_blank" style="{m[2]}">source</a>'
    out["data"]["text/markdown"] = _SHOWDOC_SOURCE.sub(fix, md)
    return out


def _pandoc_id(text: str) -> str:
    "The heading id Quarto (pandoc) gives, so that links written for the Quarto site work in these pages too."
    text = re.sub(r"<[^>]+>", "", html.unescape(text)).strip().lower()
    return re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", text))


def _link_pages(body: str) -> str:
    "Point links to sibling notebooks (`NAME.ipynb`, `NAME.ipynb#anchor`) at their pages; give headings Quarto's ids."
    body = re.sub(r'href="([\w.-]+)\.ipynb(#[^"]*)?"', lambda m: f'href="{m[1]}.html{m[2] or ""}"', body)
    def alias(m):
        pid = _pandoc_id(m[3])
        return m[0] if pid == m[2] or not pid else f'<a id="{pid}"></a>{m[0]}'
    return re.sub(r'<h([1-6]) id="([^"]*)">(.*?)<a class="anchor-link"', alias, body)


def to_html(nb_path: Path, dest: Path) -> Path:
    "Convert an executed notebook to a standalone HTML page that works offline with nbconvert (no execution)."
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    nb = nbformat.read(nb_path, as_version=4)
    nb.metadata.pop("widgets", None)                     # no widget state to render: the widgets become notes below
    cells = []
    for c in nb.cells:                                   # as the docs site would: drop `#| hide` cells and directive lines
        c.metadata.pop("execution", None)                # execnb's timings are not valid nbformat metadata
        if c.cell_type == "code":
            lines = c.source.splitlines()
            flags = {l.replace(" ", "") for l in lines if l.startswith("#|")}
            if flags & {"#|hide", "#|include:false"}: continue
            if "#|echo:false" in flags or SHOW_DOC.match(c.source): c.metadata.setdefault("tags", []).append(HIDE_INPUT)
            if "#|output:false" in flags: c.outputs = []
            c.source = "\n".join(l for l in lines if not l.startswith("#|"))
            if "#|code-fold:true" in flags and c.source.strip():        # plumbing: the code folded, its outputs shown
                cells.append(nbformat.v4.new_raw_cell(FOLD.format(code=_highlight(c.source)),
                                                      metadata={"raw_mimetype": "text/html"}))   # exported as it is
                c.metadata.setdefault("tags", []).append(HIDE_INPUT)
            if not c.source.strip() and not ("#|echo:false" in flags and c.outputs): continue   # e.g. `#| default_exp`
            c.outputs = [o for out in c.outputs
                         for o in (_widget_outputs(out) if WIDGET_MIME in out.get("data", {}) else [_showdoc_markdown(out)])]
        cells.append(c)
    nb.cells = cells
    dest = Path(dest); dest.parent.mkdir(parents=True, exist_ok=True)
    mathjax = vendor_mathjax(dest.parent)
    exporter = HTMLExporter(template_name="lab", template_file="tvae_offline.html.j2", embed_images=True,
                            exclude_input_prompt=True, exclude_output_prompt=True,      # no In [ ]: / Out[ ]:
                            extra_loaders=[DictLoader({"tvae_offline.html.j2": OFFLINE_TEMPLATE})],
                            mathjax_url=f"{mathjax.relative_to(dest.parent).as_posix()}/MathJax.js?config={MATHJAX_CONFIG}")
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={HIDE_INPUT}), enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"path": str(Path(nb_path).parent)}})  # images
    for marker, tag in FOLD_TAGS.items(): body = body.replace(marker, tag)
    dest.write_text(_link_pages(body), encoding="utf-8")
    return dest


def render(notebooks=None, out=ROOT / "site", fast=False, threads=2, verbose=True) -> dict:
    "Run copies of `notebooks` and write `out/NAME.html` plus `out/pages.html`; returns {stem: {'ok', 'seconds', 'page'}}."
    out = Path(out).resolve(); build = out / "_build"
    if build.exists(): shutil.rmtree(build)
    shutil.copytree(ROOT / "nbs", build / "nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_proc"))
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if fast: env["TVAE_NB_FAST"] = "1"
    else: env.pop("TVAE_NB_FAST", None)
    results = {}
    for nb in [Path(p).resolve() for p in (notebooks or default_notebooks())]:
        copy = build / "nbs" / nb.name
        add_api_reference(copy)                          # generated from the code at each render, never kept in nbs/
        t0 = time.time()
        r = subprocess.run([sys.executable, "-c", RUNNER, str(copy)], cwd=ROOT, env=env, capture_output=True, text=True)
        ok, secs = r.returncode == 0, time.time() - t0
        page = out / f"{nb.stem}.html"
        to_html(copy, page)                              # a failed run still renders its source (without outputs)
        results[nb.stem] = {"ok": ok, "seconds": round(secs, 1), "page": page.name, "title": title_of(nb),
                            "error": "" if ok else r.stderr[-3000:]}
        if verbose: print(f"{nb.name:36s} {secs:6.1f} s  {'ok' if ok else 'FAILED'}  -> {page}", flush=True)
    known = out / "pages.json"
    merged = {**(json.loads(known.read_text()) if known.exists() else {}), **results}
    write_index(out, {k: v for k, v in merged.items() if (out / v["page"]).exists()})
    return results


def write_index(out: Path, results: dict) -> Path:
    "Write `out/pages.html` linking every page (existing pages from earlier runs included), `out/pages.json`, and the site around the pages (`add_site`)."
    rows = []
    for stem in site_order(results):
        r = results[stem]
        status = "" if r["ok"] else ' <strong class="failed">failed to run; see the page</strong>'
        rows.append(f'<tr><td><a href="{html.escape(r["page"])}">{html.escape(r["title"])}</a></td>'
                    f'<td><code>{html.escape(stem)}</code></td><td class="num">{r["seconds"]} s</td><td>{status}</td></tr>')
    page = out / "pages.html"
    page.write_text("<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>tvae_nb course pages</title>\n"
                    f"<style>{INDEX_CSS}</style></head>\n<body><main><h1>tvae_nb: the course pages</h1>\n"
                    "<p>Every chapter of the course, rendered with its outputs. Each page has the chapter list, a table of "
                    "its sections, previous / next links and a search over all pages.</p>\n<table><thead><tr><th>page</th>"
                    "<th>notebook</th><th>run time</th><th></th></tr></thead><tbody>\n" + "\n".join(rows)
                    + "\n</tbody></table></main></body></html>\n", encoding="utf-8")
    (out / "pages.json").write_text(json.dumps(results, indent=1) + "\n")
    add_site(out, results)
    return page


# ------------------------------------------------------------------------------------------ the pages as a site
SITE_BLOCK = re.compile(r"<!-- tvae-site -->.*?<!-- /tvae-site -->", re.S)     # what add_site inserts (replaced on a re-run)
HEADING = re.compile(r'<h([1-3]) id="([^"]+)">(.*?)(?:<a class="anchor-link"[^>]*>.*?</a>)?</h\1>', re.S)
INDEX_CSS = ("body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#fafafa;color:#222}"
             "main{max-width:900px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;width:100%}"
             "th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd}th{background:#eee}"
             "td.num{text-align:right;white-space:nowrap}a{color:#1a5fb4;text-decoration:none}a:hover{text-decoration:underline}"
             ".failed{color:#b00}")
SITE_CSS = ("details.tvae-fold{margin:.4em 0}details.tvae-fold summary{cursor:pointer;color:#555;font-size:.9em}"
            "#tvae-nav{position:fixed;top:0;left:0;bottom:0;width:250px;overflow-y:auto;background:#f5f5f5;"
            "border-right:1px solid #ddd;padding:.8em;font:14px/1.35 system-ui,sans-serif;box-sizing:border-box;z-index:10}"
            "#tvae-nav h2{font-size:15px;margin:.2em 0 .5em}#tvae-nav ol,#tvae-nav ul{padding-left:1.2em;margin:.2em 0}"
            "#tvae-nav li{margin:.15em 0}#tvae-nav a{color:#1a5fb4;text-decoration:none}"
            "#tvae-nav a[aria-current=page]{font-weight:bold;color:#000}"
            "#tvae-search{width:100%;box-sizing:border-box;margin:.3em 0;padding:.3em}"
            "#tvae-search-results{font-size:13px}#tvae-toc{margin-top:.8em;border-top:1px solid #ddd;padding-top:.5em}"
            "body{margin-left:260px!important}.tvae-prevnext{display:flex;justify-content:space-between;"
            "font:14px system-ui,sans-serif;margin:.8em 1.5em}.tvae-prevnext a{color:#1a5fb4;text-decoration:none}"
            "@media (max-width:800px){#tvae-nav{position:static;width:auto;border:0}body{margin-left:0!important}}")
SEARCH_JS = """(function () {
  var box = document.getElementById('tvae-search'), list = document.getElementById('tvae-search-results');
  if (!box || !window.TVAE_SEARCH) return;
  box.addEventListener('input', function () {
    var q = box.value.toLowerCase().trim(); list.innerHTML = '';
    if (q.length < 2) return;
    var n = 0;
    for (var i = 0; i < TVAE_SEARCH.length && n < 25; i++) {
      var e = TVAE_SEARCH[i];
      if ((e.s + ' ' + e.x).toLowerCase().indexOf(q) < 0) continue;
      var li = document.createElement('li'), a = document.createElement('a');
      a.href = e.p + (e.i ? '#' + e.i : ''); a.textContent = e.t + ': ' + e.s;
      li.appendChild(a); list.appendChild(li); n++;
    }
    if (!n) list.innerHTML = '<li>no match</li>';
  });
})();
"""


def site_order(results: dict) -> list[str]:
    "The pages in reading order: the front page, then the chapters by file name."
    return (["index"] if "index" in results else []) + sorted(k for k in results if k != "index")


def _text(fragment: str) -> str:
    "Visible text of an HTML fragment, whitespace collapsed."
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", " ", fragment, flags=re.S)))).strip()


def sections(body: str) -> list[tuple[int, str, str, str]]:
    "The page's headings h1-h3 as (level, id, title, text of the section up to the next heading)."
    hs = list(HEADING.finditer(body))
    return [(int(m[1]), m[2], _text(m[3]), _text(body[m.end():hs[k + 1].start() if k + 1 < len(hs) else len(body)])[:400])
            for k, m in enumerate(hs)]


def add_site(out: Path, results: dict):
    "Give every page the chapter list, previous / next links, a table of its sections and a search over all pages (search.js: a prebuilt index; works from file://)."
    out = Path(out)
    order = [s for s in site_order(results) if (out / results[s]["page"]).exists()]
    bodies = {s: SITE_BLOCK.sub("", (out / results[s]["page"]).read_text(encoding="utf-8")) for s in order}
    index = [{"p": results[s]["page"], "t": results[s]["title"], "i": hid, "s": title, "x": text}
             for s in order for lvl, hid, title, text in sections(bodies[s])]
    (out / "search.js").write_text("window.TVAE_SEARCH = " + json.dumps(index, ensure_ascii=False) + ";\n" + SEARCH_JS,
                                   encoding="utf-8")
    link = lambda s, **kw: (f'<a href="{html.escape(results[s]["page"])}"'
                            + "".join(f' {k.replace("_", "-")}="{v}"' for k, v in kw.items()) + f'>{html.escape(results[s]["title"])}</a>')
    for k, s in enumerate(order):
        body = bodies[s]
        chapters = "".join(f"<li>{link(c, aria_current='page') if c == s else link(c)}</li>" for c in order)
        toc = "".join(f'<li class="l{lvl}"><a href="#{html.escape(hid)}">{html.escape(title)}</a></li>'
                      for lvl, hid, title, _ in sections(body) if lvl in (2, 3))
        prev = f'<span>&larr; {link(order[k - 1], rel="prev")}</span>' if k else "<span></span>"
        nxt = f'<span>{link(order[k + 1], rel="next")} &rarr;</span>' if k + 1 < len(order) else "<span></span>"
        pn = f'<nav class="tvae-prevnext" aria-label="previous and next page">{prev}<a href="pages.html">all pages</a>{nxt}</nav>'
        nav = (f'<nav id="tvae-nav" aria-label="course"><h2><a href="{html.escape(results[order[0]]["page"])}">tvae_nb course</a></h2>'
               f'<input id="tvae-search" type="search" placeholder="search the pages" aria-label="search the pages">'
               f'<ul id="tvae-search-results"></ul><ol>{chapters}</ol>'
               + (f'<div id="tvae-toc"><strong>On this page</strong><ul>{toc}</ul></div>' if toc else "") + "</nav>")
        block = lambda x: f"<!-- tvae-site -->{x}<!-- /tvae-site -->"
        body = body.replace("</head>", block(f"<style>{SITE_CSS}</style>") + "</head>", 1)
        body = re.sub(r"(<body[^>]*>)", lambda m: m[1] + block(nav + pn), body, count=1)
        body = body.replace("</body>", block(pn + '<script src="search.js"></script>') + "</body>", 1)
        (out / results[s]["page"]).write_text(body, encoding="utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*")
    ap.add_argument("--fast", action="store_true", help="set TVAE_NB_FAST=1 (CI sizes)")
    ap.add_argument("--out", default=str(ROOT / "site"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    res = render(a.notebooks or None, Path(a.out), a.fast, a.threads)
    print(f"wrote {Path(a.out) / 'pages.html'}")
    sys.exit(0 if all(r["ok"] for r in res.values()) else 1)


if __name__ == "__main__":
    main()
