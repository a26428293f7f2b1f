"""Refresh the stored outputs of the `show_doc(...)` cells of the notebooks' API reference sections.

A `show_doc` output depends only on the library's signatures and docstrings, so after a change of docments it can
be regenerated without re-running a chapter's experiments. For each notebook with a `#| default_exp MODULE`, every
code cell whose source is only `show_doc(...)` calls is executed in a fresh shell that imports `tvae_nb.MODULE` (and
its public names), and its outputs replace the stored ones; all other cells are untouched.

    python tools/refresh_api_docs.py [nbs/NN_name.ipynb ...]     # default: every notebook in nbs/
"""
import ast, json, re, sys
from pathlib import Path

from execnb.shell import CaptureShell

ROOT = Path(__file__).resolve().parents[1]
SHOW_DOC = re.compile(r"^(show_doc\([^\n]*\)\s*)+$")


def line_numbers(mod: str) -> dict:
    "Line of each top-level def/class and each `Class.method` in tvae_nb/MOD.py (what nbdev's source links point at)."
    tree = ast.parse((ROOT / "tvae_nb" / f"{mod.replace('.', '/')}.py").read_text())
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    out = {}
    for t in tree.body:
        if isinstance(t, kinds): out[t.name] = t.lineno
        if isinstance(t, ast.ClassDef): out.update({f"{t.name}.{m.name}": m.lineno for m in t.body if isinstance(m, kinds)})
    return out


def fix_source_links(outputs: list, lines: dict) -> None:
    "Fill in the line numbers that show_doc leaves as `#LNone` for objects imported from the package."
    for o in outputs:
        md = o.get("data", {}).get("text/markdown")
        if not md: continue
        text = "".join(md)
        name = re.search(r"^###\s+(\S+)", text, re.M)
        if "#LNone" in text and name and name.group(1) in lines:
            o["data"]["text/markdown"] = text.replace("#LNone", f"#L{lines[name.group(1)]}").splitlines(keepends=True)


def refresh(path: Path) -> int:
    "Re-execute the show_doc cells of the notebook at `path`; returns how many were refreshed."
    nb = json.loads(path.read_text())
    src = lambda c: "".join(c["source"])
    mod = next((m.group(1) for c in nb["cells"] if c["cell_type"] == "code"
                for m in [re.search(r"^#\|\s*default_exp\s+(\S+)", src(c), re.M)] if m), None)
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and SHOW_DOC.match(src(c).strip())]
    if mod is None or not cells: return 0
    sh = CaptureShell()
    sh.run(f"from tvae_nb.{mod} import *\nimport tvae_nb.{mod} as _m\nfrom nbdev.showdoc import show_doc\n"
           "globals().update({k: v for k, v in vars(_m).items() if not k.startswith('__')})")
    if sh.exc: raise RuntimeError(f"{path.name}: importing tvae_nb.{mod} failed: {sh.exc}")
    lines = line_numbers(mod)
    for c in cells:
        c["outputs"] = [dict(o) for o in sh.run(src(c))]
        fix_source_links(c["outputs"], lines)
        if sh.exc: raise RuntimeError(f"{path.name}: {src(c).strip()} failed: {sh.exc}")
        for o in c["outputs"]:
            if "execution_count" in o: o["execution_count"] = None
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return len(cells)


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or sorted((ROOT / "nbs").glob("*.ipynb"))
    for p in paths: print(f"{p.name}: {refresh(p)} show_doc cells refreshed")
