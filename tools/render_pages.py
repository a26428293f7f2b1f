"""Render the course notebooks as static HTML pages with their outputs, without Quarto.

    python tools/render_pages.py [NOTEBOOK ...] [--fast] [--out site] [--threads 2]

Each notebook is copied into `OUT/_build/` (with the rest of `nbs/`, so relative paths such as `runs/` resolve), run
there top to bottom by `nbdev.test.test_nb(save=True)` in a fresh process (nbdev's skip flags respected), then
converted with nbconvert's HTML exporter (no `--execute`). The sources in `nbs/` are never modified. `OUT/index.html`
lists the pages, marking any notebook that failed to run. Where Quarto is installed, `nbdev-docs` builds the full site
from `nbs/_quarto.yml` instead.
"""
import argparse, html, json, os, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run one notebook top to bottom with nbdev's test_nb in a fresh process: `python -c RUNNER NOTEBOOK [SAVE]`, where
# SAVE is 1 (default: write the outputs back into NOTEBOOK) or 0. tools/time_notebooks.py and the tests use it too.
RUNNER = """
import sys
from nbdev.config import get_config
from nbdev.test import test_nb
cfg = get_config()
ok, secs = test_nb(sys.argv[1], skip_flags=cfg.tst_flags.split(), basepath=str(cfg.config_path),
                   cell_timeout=int(cfg.get('cell_timeout', 600)), save=(sys.argv[2:] or ['1'])[0] == '1')
sys.exit(0 if ok else 1)
"""


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


def to_html(nb_path: Path, dest: Path) -> Path:
    "Convert an executed notebook to standalone HTML with nbconvert (no execution)."
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(nb_path, as_version=4)
    cells = []
    for c in nb.cells:                                   # as the docs site would: drop `#| hide` cells and directive lines
        c.metadata.pop("execution", None)                # execnb's timings are not valid nbformat metadata
        if c.cell_type == "code":
            lines = c.source.splitlines()
            if any(l.replace(" ", "") == "#|hide" for l in lines): continue
            c.source = "\n".join(l for l in lines if not l.startswith("#|"))
            if not c.source.strip(): continue                # e.g. the `#| default_exp` cell
        cells.append(c)
    nb.cells = cells
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    dest.write_text(body, encoding="utf-8")
    return dest


def render(notebooks=None, out=ROOT / "site", fast=False, threads=2, verbose=True) -> dict:
    "Run copies of `notebooks` and write `out/NAME.html` plus `out/index.html`; returns {stem: {'ok', 'seconds', 'page'}}."
    out = Path(out); build = out / "_build"
    if build.exists(): shutil.rmtree(build)
    shutil.copytree(ROOT / "nbs", build / "nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_proc"))
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if fast: env["TVAE_NB_FAST"] = "1"
    else: env.pop("TVAE_NB_FAST", None)
    results = {}
    for nb in [Path(p).resolve() for p in (notebooks or default_notebooks())]:
        copy = build / "nbs" / nb.name
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
    "Write `out/index.html` linking every page (existing pages from earlier runs included)."
    rows = []
    for stem, r in sorted(results.items()):
        status = "" if r["ok"] else " <strong>(failed to run; see the page)</strong>"
        rows.append(f'<li><a href="{html.escape(r["page"])}">{html.escape(r["title"])}</a> '
                    f'<small>({html.escape(stem)}, {r["seconds"]} s)</small>{status}</li>')
    page = out / "index.html"
    page.write_text("<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>tvae_nb course pages</title></head>\n"
                    "<body><h1>tvae_nb: rendered course pages</h1>\n<ul>\n" + "\n".join(rows) + "\n</ul></body></html>\n",
                    encoding="utf-8")
    (out / "pages.json").write_text(json.dumps(results, indent=1) + "\n")
    return page


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*")
    ap.add_argument("--fast", action="store_true", help="set TVAE_NB_FAST=1 (CI sizes)")
    ap.add_argument("--out", default=str(ROOT / "site"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    res = render(a.notebooks or None, Path(a.out), a.fast, a.threads)
    print(f"wrote {Path(a.out) / 'index.html'}")
    sys.exit(0 if all(r["ok"] for r in res.values()) else 1)


if __name__ == "__main__":
    main()
