"""The shape of every chapter: lessons first, then Summary, Exercises and References, then the API reference.

A learner reads a chapter top to bottom; the API reference (generated when the pages are rendered) comes after the
lesson, and a `show_doc` cell never sits between its first section and its Summary. Every chapter 01-08 prints its verdicts in its Summary (a `print_claims`
cell whose committed output has a verdict line), and no chapter's prose is longer than its reading slot allows.
"""
import json, re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))
VERDICT_CHAPTERS = sorted(p.stem for p in CHAPTERS if "01" <= p.stem[:2] <= "08")
VERDICT_WORDS = ("HOLDS", "HOLDS PARTLY", "DOES NOT HOLD")

# Prose budgets in words (markdown before the API reference, without fenced code and display math). At about
# 130 words a minute, 2,000 words is a 15-minute read: the longest a chapter may take inside a 20-25 minute slot
# that also runs code and exercises. Chapters not listed get DEFAULT_WORDS. Chapters 03 and 08 get 5 % more: the count
# includes the letters of inline math and code, which they use most (about 270 of 03's words).
DEFAULT_WORDS = 2000
WORD_BUDGET = {"03_student_t": 2100, "08_dsprites": 2100}


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


def summary_section(cells):
    "The cells from the '## Summary' heading to the next '## ' heading."
    start = next(i for i, c in enumerate(cells) if (_heading(c) or "").startswith("## Summary"))
    end = next((i for i, c in enumerate(cells[start + 1:], start + 1) if _heading(c)), len(cells))
    return cells[start:end]


def printed_verdicts(cells):
    "Committed outputs of the print_claims cells of the Summary that carry a verdict line."
    printed = ["".join(o.get("text", "")) for c in summary_section(cells) if c["cell_type"] == "code"
               and "print_claims(" in "".join(c["source"]) for o in c.get("outputs", [])]
    return [t for t in printed if any(w in t for w in VERDICT_WORDS)]


@pytest.mark.parametrize("chapter", VERDICT_CHAPTERS)
def test_the_summary_prints_the_chapter_verdicts(chapter):
    assert printed_verdicts(_cells(ROOT / "nbs" / f"{chapter}.ipynb")), \
        f"{chapter}: its Summary has no print_claims cell whose committed output has a verdict line"


def test_the_verdict_check_fails_without_output():
    "A Summary whose print_claims cell was never run (or prints no verdict) is caught."
    cells = [{"cell_type": "markdown", "source": ["## Summary"]},
             {"cell_type": "code", "source": ["print_claims(c)"], "outputs": []},
             {"cell_type": "markdown", "source": ["## Exercises"]},
             {"cell_type": "code", "source": ["print_claims(c)"], "outputs": [{"text": ["HOLDS (1 of 1 checks)"]}]}]
    assert printed_verdicts(cells) == []
    cells[1]["outputs"] = [{"text": ["DOES NOT HOLD (0 of 2 checks, --budget quick): x"]}]
    assert printed_verdicts(cells)


def prose_words(cells) -> int:
    "Words of prose before the API reference: markdown without fenced code and display math."
    n = 0
    for c in cells:
        s = "".join(c["source"])
        if c["cell_type"] != "markdown": continue
        if s.startswith("## API reference"): break
        s = re.sub(r"```.*?```", " ", s, flags=re.S); s = re.sub(r"\$\$.*?\$\$", " ", s, flags=re.S)
        n += len(re.findall(r"[A-Za-z][A-Za-z'’-]*", s))
    return n


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_prose_fits_its_slot(nb):
    words, budget = prose_words(_cells(nb)), WORD_BUDGET.get(nb.stem, DEFAULT_WORDS)
    assert words <= budget, f"{nb.stem}: {words} words of prose, over its budget of {budget}; cut or split the chapter"


def test_the_word_count_skips_code_math_and_the_reference():
    cells = [{"cell_type": "markdown", "source": ["## Lesson\nTwo words $$x = y + z$$ ```\nnot counted\n```"]},
             {"cell_type": "code", "source": ["many words in code are not prose"]},
             {"cell_type": "markdown", "source": ["## API reference"]}, {"cell_type": "markdown", "source": ["ignored"]}]
    assert prose_words(cells) == 3        # 'Lesson', 'Two', 'words'
