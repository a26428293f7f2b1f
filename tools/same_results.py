#!/usr/bin/env python
"""Check that this checkout trains exactly what commit REV trains: the fast table and one quick row, bit for bit.

    python tools/same_results.py --against REV              # the fast table and a quick row: about 5 minutes on 2 cores
    python tools/same_results.py --against REV --no-row     # the fast table only (about a minute)

Each job runs twice, from empty folders, with one torch thread per process: with REV's code (a temporary git worktree,
first on PYTHONPATH) and with this checkout's, the two at the same time. The jobs are `tvae-nb table1 --budget fast
--jobs 1` and `tvae-nb run table1-tvae-partial --budget quick` (6,500 steps); before them, every registered experiment's
training sampler (three batches of rank 1) and held-out batch at `--budget fast` are hashed with both codes. Compared: `table1.json` and every
`metrics.jsonl` value for value with tolerance 0 (timings left out, `tools/compare_runs.py`), and every tensor of every
checkpoint's model weights bitwise. Exit 0 when everything is equal; otherwise each difference is printed.
Used for refactors that must not change behaviour.
"""
from __future__ import annotations

import argparse, os, subprocess, sys, tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from compare_runs import compare
from tvae_nb.checkpoint import load_checkpoint

JOBS = {"table1-fast": ["table1", "--budget", "fast", "--jobs", "1"],
        "row-quick": ["run", "table1-tvae-partial", "--budget", "quick"]}


def start(args: list, out: Path, code: Path, log: Path) -> subprocess.Popen:
    "Start `tvae-nb ARGS --out OUT` with the tvae_nb of checkout `code`, one torch thread, output to `log`."
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "tvae_nb.cli", *args, "--out", str(out), "--no-progress"]
    return subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, cwd=code)


BATCHES = """
import hashlib, tvae_nb.runner as R
from tvae_nb.recipes import EXPERIMENTS, make_experiment
if hasattr(R, "make_sampler"): from tvae_nb.runner import make_sampler, eval_batch      # before chapter 9c split off
else: from tvae_nb.evaluation import make_sampler, eval_batch
for name in EXPERIMENTS:
    cfg, h = make_experiment(name, "fast"), hashlib.sha256()
    s = make_sampler(cfg, rank=1)
    for batch in [s.sample() for _ in range(3)] + [eval_batch(cfg)]:
        for t in batch: h.update(t.numpy().tobytes())
    print(name, type(s).__name__, h.hexdigest())
"""


def batches(code: Path) -> list[str]:
    "One line per experiment (name, sampler class, sha256 of its batches) from the tvae_nb of checkout `code`."
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", BATCHES], capture_output=True, text=True, env=env, cwd=code)
    if r.returncode: sys.exit(f"hashing the batches failed with the code of {code}:\n{r.stderr[-2000:]}")
    return r.stdout.splitlines()


def weights_differ(a: Path, b: Path) -> list[str]:
    "Every checkpoint under `a` whose model weights are not bitwise those of the same checkpoint under `b`."
    out = []
    for pa in sorted(a.rglob("checkpoint.pt")):
        pb = b / pa.relative_to(a)
        if not pb.is_file(): out.append(f"{pb}: missing"); continue
        wa, wb = load_checkpoint(pa)["model"], load_checkpoint(pb)["model"]        # verified, weights_only
        if wa.keys() != wb.keys(): out.append(f"{pa.relative_to(a)}: other parameter names"); continue
        out += [f"{pa.relative_to(a)}: {k} differs" for k in wa if not torch.equal(wa[k], wb[k])]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", metavar="REV", required=True, help="the git commit whose results this checkout must equal")
    ap.add_argument("--no-row", action="store_true", help="the fast table only, not the quick row")
    args = ap.parse_args(argv)
    jobs = {k: v for k, v in JOBS.items() if not (args.no_row and k == "row-quick")}
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        d, tree = Path(d), Path(d) / "then"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), args.against], check=True)
        try:
            sha = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
            then, now = batches(tree), batches(ROOT)
            then_, now_ = (dict(line.split(" ", 1) for line in x) for x in (then, now))   # experiment -> sampler and hash
            odd = [f"{k}: {then_[k]} != {now_[k]}" for k in then_.keys() & now_.keys() if then_[k] != now_[k]]
            only = sorted(then_.keys() ^ now_.keys())                      # added or removed experiments: no comparison
            print(f"batches of the {len(then_.keys() & now_.keys())} experiments in both at --budget fast: "
                  f"{'identical' if not odd else odd}" + (f"; only in one of them: {only}" if only else ""), flush=True)
            failed += bool(odd)
            for name, cmd in jobs.items():
                print(f"tvae-nb {' '.join(cmd)}: commit {sha[:10]} and this checkout, side by side", flush=True)
                procs = [start(cmd, d / f"{name}-{who}", code, d / f"{name}-{who}.log")
                         for who, code in (("then", tree), ("now", ROOT))]
                if any(p.wait() for p in procs):
                    print(f"  a run failed; logs: {d}/{name}-then.log, {d}/{name}-now.log")
                    print((d / f"{name}-now.log").read_text()[-2000:]); return 2
                diffs = compare(d / f"{name}-then", d / f"{name}-now", tol=0.0)
                diffs += weights_differ(d / f"{name}-then", d / f"{name}-now")
                n_ckpt = len(list((d / f"{name}-now").rglob("checkpoint.pt")))
                print(f"  {'identical' if not diffs else f'{len(diffs)} differences'}: every logged value (tolerance 0) "
                      f"and the weights of {n_ckpt} checkpoint(s)", flush=True)
                for line in diffs[:20]: print("   ", line)
                failed += bool(diffs)
        finally: subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
