"""The shape of every chapter: lessons first, then Summary, Exercises and References, then the API reference.

A learner reads a chapter top to bottom; the `show_doc` cells of the API reference come after the lesson, never
between its first section and its Summary. Chapters that test a claim of the paper print their verdicts in their
Summary (a `print_claims` cell whose committed output has a verdict line).
"""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))
CLAIM_CHAPTERS = ["04_tvae", "05_temporal_coherence", "06_equivariant_capsules", "07_complex_transforms", "08_dsprites"]
VERDICT_WORDS = ("HOLDS", "HOLDS PARTLY", "DOES NOT HOLD")


def _cells(nb_path):
    return json.loads(nb_path.read_text())["cells"]


def _heading(c):
    s = "".join(c["source"])
    return s.splitlines()[0] if c["cell_type"] == "markdown" and s.startswith("## ") else None


def _is_show_doc(c):
    s = "".join(c["source"])
    return c["cell_type"] == "code" and "show_doc(" in s and "import show_doc" not in s


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_no_show_doc_before_the_summary(nb):
    cells = _cells(nb)
    summary = [i for i, c in enumerate(cells) if (_heading(c) or "").startswith("## Summary")]
    assert summary, f"{nb.stem} has no Summary"
    early = [i for i, c in enumerate(cells[:summary[0]]) if _is_show_doc(c)]
    assert not early, f"{nb.stem}: show_doc cells {early} sit in the lesson, before the Summary (cell {summary[0]})"


@pytest.mark.parametrize("chapter", CLAIM_CHAPTERS)
def test_the_summary_prints_the_chapter_verdicts(chapter):
    cells = _cells(ROOT / "nbs" / f"{chapter}.ipynb")
    start = next(i for i, c in enumerate(cells) if (_heading(c) or "").startswith("## Summary"))
    end = next((i for i, c in enumerate(cells[start + 1:], start + 1) if _heading(c)), len(cells))
    printed = ["".join(o.get("text", "")) for c in cells[start:end] if c["cell_type"] == "code"
               and "print_claims(" in "".join(c["source"]) for o in c.get("outputs", [])]
    assert printed, f"{chapter}: its Summary has no print_claims cell with output"
    assert any(w in t for t in printed for w in VERDICT_WORDS), f"{chapter}: the Summary's output has no verdict line"


def test_the_check_finds_a_misplaced_reference():
    "A show_doc cell placed before the Summary is caught."
    cells = [{"cell_type": "markdown", "source": ["## Lesson"]}, {"cell_type": "code", "source": ["show_doc(f)"]},
             {"cell_type": "markdown", "source": ["## Summary"]}]
    assert _is_show_doc(cells[1]) and [i for i, c in enumerate(cells[:2]) if _is_show_doc(c)] == [1]
