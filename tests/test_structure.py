"""The shape of every chapter: lessons first, then Summary, Exercises and References, then the API reference.

A learner reads a chapter top to bottom; the `show_doc` cells of the API reference come after the lesson, never
between its first section and its Summary.
"""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))


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


def test_the_check_finds_a_misplaced_reference():
    "A show_doc cell placed before the Summary is caught."
    cells = [{"cell_type": "markdown", "source": ["## Lesson"]}, {"cell_type": "code", "source": ["show_doc(f)"]},
             {"cell_type": "markdown", "source": ["## Summary"]}]
    assert _is_show_doc(cells[1]) and [i for i, c in enumerate(cells[:2]) if _is_show_doc(c)] == [1]
