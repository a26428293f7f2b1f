#!/usr/bin/env python
"""Wall time of `tvae-nb table1` with one process (`--jobs 1`) against the default (one process per core), back to back.

    python benchmarks/table1_walltime.py --budget quick          # about 7 + 4 minutes on a quiet 2-core CPU
    python benchmarks/table1_walltime.py --budget fast --out /tmp/r.json   # a check that it runs (about a minute)

Both runs start from empty folders (nothing is resumed), with progress off, and must write the same table: the script
compares their table1.json rows (all but the wall-clock `train_seconds`) and records whether they are identical. The
result goes to section `g` of results.json (the other sections, from benchmarks/run.py, are kept). Target: the default
at least 1.7x faster than `--jobs 1` at `--budget quick` on a 2-core machine. Run it on a quiet machine: the load
average before and after each run is recorded.
"""
from __future__ import annotations

import argparse, datetime, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.7          # speed-up of the default --jobs over --jobs 1 at --budget quick on 2 cores


def run_table1(budget: str, out: Path, jobs: int | None, log: Path) -> dict:
    "Run `tvae-nb table1` once in a fresh process; its wall time, load averages and table1.json."
    cmd = [sys.executable, "-m", "tvae_nb.cli", "table1", "--budget", budget, "--out", str(out), "--no-progress"]
    if jobs is not None: cmd += ["--jobs", str(jobs)]
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    load_before, t0 = os.getloadavg(), time.time()
    with open(log, "w") as f: r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    secs = time.time() - t0
    if r.returncode != 0: sys.exit(f"{' '.join(cmd)} failed (exit {r.returncode}); see {log}")
    return dict(command=" ".join(["tvae-nb", *cmd[3:]]), wall_s=round(secs, 1), load_avg_before=list(load_before),
                load_avg_after=list(os.getloadavg()), table=json.loads((out / "table1.json").read_text()))


def numbers(table: dict) -> list[dict]:
    "The rows without their wall-clock fields."
    return [{k: v for k, v in row.items() if k != "train_seconds"} for row in table["rows"]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", default="quick", help="fast, quick or paper (default quick)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"), help="results.json to update (section g)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        print(f"tvae-nb table1 --budget {args.budget}: --jobs 1, then the default; logs in {d}", flush=True)
        one = run_table1(args.budget, d / "jobs1", 1, d / "jobs1.log")
        print(f"  --jobs 1: {one['wall_s']:.0f} s", flush=True)
        dflt = run_table1(args.budget, d / "default", None, d / "default.log")
        print(f"  default (--jobs {dflt['table']['jobs']}): {dflt['wall_s']:.0f} s", flush=True)
    speedup = one["wall_s"] / dflt["wall_s"]
    g = dict(budget=args.budget, jobs_default=dflt["table"]["jobs"], cpu_count=os.cpu_count(),
             wall_s_jobs1=one["wall_s"], wall_s_default=dflt["wall_s"], speedup=round(speedup, 3),
             identical_rows=numbers(one["table"]) == numbers(dflt["table"]),
             target=dict(speedup=TARGET, applies=args.budget == "quick" and os.cpu_count() == 2,
                         met=speedup >= TARGET if args.budget == "quick" else None),
             runs={"jobs1": {k: v for k, v in one.items() if k != "table"},
                   "default": {k: v for k, v in dflt.items() if k != "table"}},
             python=platform.python_version(), date=datetime.datetime.now().isoformat(timespec="seconds"))
    out = Path(args.out)
    res = json.loads(out.read_text()) if out.exists() else {}
    res["g"] = g
    out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(res, indent=1))
    print(f"speed-up {speedup:.2f}x with {g['jobs_default']} processes (target {TARGET}x at --budget quick on 2 cores); "
          f"rows identical: {g['identical_rows']}; wrote section g of {out}")
    return 0 if g["identical_rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
