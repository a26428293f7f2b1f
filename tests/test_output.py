"""What the command line prints is read by a person: Table 1 at most 100 characters wide (every block, every row), a
run's last line short, and each number of a row still in the table."""
import json
from pathlib import Path

import pytest

from tvae_nb.table1 import TABLE_WIDTH, format_table1

ROOT = Path(__file__).resolve().parents[1]
TABLES = sorted((ROOT / "nbs" / "results").glob("table1-*/table1.json"))


@pytest.mark.parametrize("path", TABLES, ids=[p.parent.name for p in TABLES])
def test_table1_is_at_most_100_characters_wide(path):
    rows = json.loads(path.read_text())["rows"]
    text = format_table1(rows)
    widest = max(text.splitlines(), key=len)
    assert TABLE_WIDTH == 100 and len(widest) <= 100, f"{len(widest)}: {widest}"
    blocks = text.split("\n\n")
    assert len(blocks) == 5
    for b in blocks:                                    # each block: one line per row
        for r in rows: assert sum(l[:16].rstrip() == r["model"] for l in b.splitlines()) == 1, (r["model"], b)
    for r in rows:                                      # the numbers are all there
        for k, fmt in (("log_px", ".1f"), ("elbo", ".1f"), ("E_eq_c", ".0f"), ("E_inv_det_c", ".0f"), ("roll_mse", ".1f")):
            assert format(r[k], fmt) in text, (r["model"], k)


def test_a_runs_summary_is_short(tmp_path):
    from conftest import tiny_experiment
    from tvae_nb.runner import _summary, run_experiment
    cfg = tiny_experiment(steps=2, every=2, n_caps=2, cap_dim=4, seq_len=4, hidden=(16, 16), n_eval=4, kl_warmup=0)
    res = run_experiment(cfg, tmp_path / "r", progress=False)
    lines = _summary(cfg, res.history, tmp_path / "r").splitlines()
    assert len(lines[0]) <= 300 and "every metric in metrics.jsonl" in lines[0], lines[0]
    assert lines[1].startswith(f"[tvae-nb] files in {tmp_path / 'r'}: config.json, metrics.jsonl, checkpoint.pt")
