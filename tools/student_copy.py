"""Write a copy of the course for learners: no `solutions/` folder, no sentence that points to it, no answers in the guide.

    python tools/student_copy.py DEST [--force]

Copies every file git tracks (so nothing built or downloaded comes along) except `solutions/` and the test that runs
the solutions (`tests/test_solutions.py`), into DEST. In the notebooks and Markdown files, every sentence that
mentions `solutions/` is removed, and the instructor guide's answer sections (markdown cells headed `## Answers`, and the
rubric) keep only their heading; nothing else changes, so the exercises, their checkers and the chapters' outputs
stay as they are. Teachers hand DEST to their class (zip it, or push it to a repository of its own).
"""
import argparse, json, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEAVE_OUT = ("solutions/", "tests/test_solutions.py")
END = re.compile(r"[.!?](?=\s|$)")


def drop_solution_sentences(text: str) -> str:
    "`text` without the sentences that mention `solutions/` (a sentence ends at . ! or ? before a space or the end)."
    while (i := text.find("solutions/")) >= 0:
        ends = [m.end() for m in END.finditer(text, 0, i)]
        start = ends[-1] if ends else 0
        para = text.rfind("\n\n", 0, i)                               # never reach back past the paragraph
        start = max(start, para + 2 if para >= 0 else 0)
        m = END.search(text, i)
        stop = m.end() if m else len(text)
        text = text[:start].rstrip(" ") + (" " if start and text[start - 1:start] not in ("\n", "") else "") + text[stop:].lstrip(" ")
        text = re.sub(r" +\n", "\n", text)
    return text


ANSWER_HEADINGS = ("## Answers", "## A rubric")       # the guide's sections a learner must not read


def drop_answers(text: str) -> str:
    "A markdown cell headed by one of `ANSWER_HEADINGS`, cut to its heading; any other cell unchanged."
    if not text.startswith(ANSWER_HEADINGS): return text
    return text.splitlines()[0] + "\n\nLeft out of the learners' copy: the teacher's copy of the course has it.\n"


def strip_notebook(path: Path):
    "Remove the sentences about `solutions/` and the guide's answer sections from a notebook's markdown cells, in place."
    nb = json.loads(path.read_text())
    for c in nb["cells"]:
        src = "".join(c["source"])
        if c["cell_type"] != "markdown": continue
        new = drop_answers(drop_solution_sentences(src) if "solutions/" in src else src)
        if new != src: c["source"] = new.splitlines(keepends=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def student_copy(dest: Path, force: bool = False) -> list[Path]:
    "Write the student copy into `dest`; returns the files written."
    dest = Path(dest)
    if dest.exists():
        if not force: raise SystemExit(f"student_copy: {dest} exists; pass --force to replace it")
        shutil.rmtree(dest)
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\n")
    written = []
    for rel in filter(None, files):
        if rel.startswith(LEAVE_OUT) or not (ROOT / rel).is_file(): continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, out)
        if out.suffix == ".ipynb": strip_notebook(out)
        elif out.suffix == ".md": out.write_text(drop_solution_sentences(out.read_text()))
        written.append(out)
    return written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dest", help="the folder to write (must not exist, unless --force)")
    p.add_argument("--force", action="store_true", help="replace DEST if it exists")
    a = p.parse_args(argv)
    files = student_copy(Path(a.dest), a.force)
    print(f"wrote {len(files)} files to {a.dest} (no solutions/, no sentence pointing to it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
