"""The package page: the description a package index shows is the README with every link absolute."""
import re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from make_readme import absolute_links          # noqa: E402

RELATIVE = re.compile(r"\]\((?!https?:|#|mailto:)[^)\s]+\)")


def test_the_package_description_is_the_readme_with_absolute_links():
    readme, pypi = (ROOT / "README.md").read_text(), (ROOT / "README.pypi.md").read_text()
    assert RELATIVE.search(readme), "README.md links its chapters relatively (they resolve in a clone)"
    assert pypi == absolute_links(readme)
    assert not RELATIVE.findall(pypi), RELATIVE.findall(pypi)[:3]
    assert "](https://github.com/tvae-nb/tvae_nb/blob/main/nbs/01_data.ipynb)" in pypi
    assert "](https://raw.githubusercontent.com/tvae-nb/tvae_nb/main/nbs/results/" in pypi      # images as raw files
    assert 'readme = {file = "README.pypi.md"' in (ROOT / "pyproject.toml").read_text()
    assert "README.pypi.md" in (ROOT / "MANIFEST.in").read_text()


def test_absolute_links_leaves_absolute_and_anchor_links_alone():
    text = "[a](nbs/x.ipynb) [b](https://e.org/y) [c](#sec) ![i](nbs/results/p.png)"
    out = absolute_links(text)
    assert "[b](https://e.org/y)" in out and "[c](#sec)" in out
    assert "[a](https://github.com/tvae-nb/tvae_nb/blob/main/nbs/x.ipynb)" in out
    assert "![i](https://raw.githubusercontent.com/tvae-nb/tvae_nb/main/nbs/results/p.png)" in out
