"""The student copy (tools/student_copy.py): the course without its solutions and without a word pointing to them."""
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from student_copy import drop_solution_sentences   # noqa: E402


def test_sentences_pointing_to_solutions_are_dropped():
    text = "Run the cell. Reference solutions are in `solutions/`.\nNext line stays.\n\nAnother paragraph."
    assert drop_solution_sentences(text) == "Run the cell.\nNext line stays.\n\nAnother paragraph."
    assert drop_solution_sentences("No pointer here.") == "No pointer here."


def test_student_copy_has_no_solutions(tmp_path):
    dest = tmp_path / "course"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "student_copy.py"), str(dest)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not (dest / "solutions").exists() and not (dest / "tests" / "test_solutions.py").exists()
    for nb in (ROOT / "nbs").glob("*.ipynb"):
        ours, theirs = json.loads(nb.read_text()), json.loads((dest / "nbs" / nb.name).read_text())
        assert "solutions/" not in json.dumps(theirs), nb.name
        assert len(ours["cells"]) == len(theirs["cells"])                   # every exercise and checker is still there
        assert [c["source"] for c in ours["cells"] if c["cell_type"] == "code"] == \
               [c["source"] for c in theirs["cells"] if c["cell_type"] == "code"]
    assert "solutions/" not in (dest / "README.md").read_text()
    assert (dest / "tvae_nb" / "exercises.py").is_file() and (dest / "pyproject.toml").is_file()
    again = subprocess.run([sys.executable, str(ROOT / "tools" / "student_copy.py"), str(dest)], capture_output=True, text=True)
    assert again.returncode != 0 and "--force" in (again.stderr + again.stdout)
