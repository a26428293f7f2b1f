"""Write README.md from nbs/index.ipynb (a Quarto-free stand-in for `nbdev-readme`).

Drops `#|` directive lines and cells marked `#| hide`; turns the frontmatter cell (`# Title` / `> subtitle`)
into a heading and a quote. Of a cell marked `#| echo: false` only the outputs are kept: printed text as a code
block, Markdown as itself. A table that shows as HTML on a page (`tvae_nb.core.html_table`) carries its Markdown form
too, and the README takes that one: a pipe table, which GitHub renders. Also writes `README.pypi.md`, the package
page's description (pyproject's `readme`): the same text with every relative link made absolute (pages on the
repository, images as raw files), because a package index cannot resolve links into a repository. Run from anywhere:
`python tools/make_readme.py`.
"""
import re
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n"


def make_readme(src=ROOT / "nbs" / "index.ipynb", dst=ROOT / "README.md") -> str:
    nb = nbformat.read(src, as_version=4)
    keep = []
    for cell in nb.cells:
        lines = cell.source.splitlines()
        directives = [l for l in lines if l.lstrip().startswith("#|")]
        if any(d.replace(" ", "") in ("#|hide", "#|exporti", "#|include:false") for d in directives):
            continue
        cell.source = "\n".join(l for l in lines if not l.lstrip().startswith("#|"))
        if any(d.replace(" ", "") == "#|echo:false" for d in directives):   # show the outputs only
            shown = [t for t in map(output_markdown, cell.get("outputs", [])) if t]
            if not shown: continue
            cell = nbformat.v4.new_markdown_cell("\n\n".join(shown))
        else:
            for o in cell.get("outputs", []):                                 # a table shown as HTML: its Markdown form
                if "text/markdown" in o.get("data", {}): o["data"].pop("text/html", None)
        keep.append(cell)
    nb.cells = keep
    body, _ = MarkdownExporter(exclude_input_prompt=True, exclude_output_prompt=True).from_notebook_node(nb)
    body = body.replace("](results/", "](nbs/results/")          # image paths are relative to nbs/ in the notebook
    body = re.sub(r"\]\((\w+\.ipynb)", r"](nbs/\1", body)            # and so are links to the chapters
    text = HEADER + body.strip() + "\n"
    Path(dst).write_text(text)
    if Path(dst) == ROOT / "README.md": (ROOT / "README.pypi.md").write_text(absolute_links(text))
    return text


def output_markdown(out: dict) -> str:
    "What README.md shows of one output of an `echo: false` cell: printed text as a code block, Markdown (a table) as itself."
    if out.get("output_type") == "stream":
        text = "".join(out.get("text", ""))
        return "```\n" + text.rstrip() + "\n```" if text.strip() else ""
    md = out.get("data", {}).get("text/markdown", "")
    return ("".join(md) if isinstance(md, list) else md).strip()


def absolute_links(text: str) -> str:
    "`text` with relative markdown links and images pointing at the repository of pyproject's [project.urls]."
    repo = re.search(r'^Repository\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1].rstrip("/")   # [project.urls]
    raw = repo.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
    text = re.sub(r"!\[([^\]]*)\]\((?!https?:|#)([^)\s]+)\)", lambda m: f"![{m[1]}]({raw}{m[2]})", text)         # images: raw files
    return re.sub(r"(?<!!)\[([^\]]*)\]\((?!https?:|#|mailto:)([^)\s]+)\)", lambda m: f"[{m[1]}]({repo}/blob/main/{m[2]})", text)


if __name__ == "__main__":
    make_readme()
    print("wrote README.md")
