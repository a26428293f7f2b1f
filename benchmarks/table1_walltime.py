#!/usr/bin/env python
"""Wall time of `tvae-nb table1` with one process (`--jobs 1`) against the default (one process per core), back to back.

    python benchmarks/table1_walltime.py --budget quick          # about 7 + 4 minutes on a quiet 2-core CPU
    python benchmarks/table1_walltime.py --budget fast --out /tmp/r.json   # a check that it runs (about a minute)
    python benchmarks/table1_walltime.py --budget quick --against e10c0af  # this code against an earlier commit

With `--against REV` it instead runs the table with the code of commit REV (checked out into a temporary git worktree,
imported first through PYTHONPATH) and then with this checkout's, both with the default processes, back to back from
empty folders, and records in section `g.against` both wall times, their ratio (this code's / REV's; target <= 0.6 at
`--budget quick`) and every value that differs (timings left out; floats within `--tol`, default 1e-3, are counted as
equal and their largest difference is recorded; metrics.jsonl is compared at the steps both evaluated).

Both runs start from empty folders (nothing is resumed), with progress off, and must write the same table: the script
compares their table1.json rows (all but the wall-clock seconds) and records whether they are identical. The
result goes to section `g` of results.json (the other sections, from benchmarks/run.py, are kept). Target: the default
at least 1.7x faster than `--jobs 1` at `--budget quick` on a 2-core machine. Run it on a quiet machine: the load
average before and after each run is recorded.
"""
from __future__ import annotations

import argparse, datetime, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.7          # speed-up of the default --jobs over --jobs 1 at --budget quick on 2 cores


def run_table1(budget: str, out: Path, jobs: int | None, log: Path, code: Path = ROOT) -> dict:
    "Run `tvae-nb table1` once in a fresh process with the tvae_nb of checkout `code`; its wall time, load averages and table1.json."
    cmd = [sys.executable, "-m", "tvae_nb.cli", "table1", "--budget", budget, "--out", str(out), "--no-progress"]
    if jobs is not None: cmd += ["--jobs", str(jobs)]
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]))
    load_before, t0 = os.getloadavg(), time.time()
    with open(log, "w") as f: r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=code)
    secs = time.time() - t0
    if r.returncode != 0: sys.exit(f"{' '.join(cmd)} failed (exit {r.returncode}); see {log}")
    return dict(command=" ".join(["tvae-nb", *cmd[3:]]), wall_s=round(secs, 1), load_avg_before=list(load_before),
                load_avg_after=list(os.getloadavg()), table=json.loads((out / "table1.json").read_text()))


def numbers(table: dict) -> list[dict]:
    "The rows without their wall-clock fields (train_seconds, eval_seconds, final_eval_seconds)."
    return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in table["rows"]]   # train, eval, final


AGAINST_TARGET = 0.6   # this code's wall time / the earlier commit's, at --budget quick (issue: the quick table, faster)


def against(budget: str, rev: str, tol: float) -> dict:
    "Run the table with commit `rev`'s code, then with this checkout's, back to back; their wall times and differences."
    sys.path.insert(0, str(ROOT / "tools"))
    from compare_runs import compare
    with tempfile.TemporaryDirectory() as d:
        d, tree = Path(d), Path(d) / "then"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
        try:
            sha = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
            print(f"tvae-nb table1 --budget {budget}: commit {sha[:10]}, then this checkout; logs in {d}", flush=True)
            then = run_table1(budget, d / "t_then", None, d / "then.log", code=tree)
            print(f"  {sha[:10]}: {then['wall_s']:.0f} s", flush=True)
            now = run_table1(budget, d / "t_now", None, d / "now.log")
            print(f"  this checkout: {now['wall_s']:.0f} s", flush=True)
            near = []
            diffs = compare(d / "t_then", d / "t_now", tol=tol, common_steps=True, near=near)
        finally: subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)])
    ratio = now["wall_s"] / then["wall_s"]
    return dict(budget=budget, rev=sha, wall_s_then=then["wall_s"], wall_s_now=now["wall_s"], ratio=round(ratio, 3),
                target=dict(ratio=AGAINST_TARGET, met=ratio <= AGAINST_TARGET if budget == "quick" else None),
                tolerance=tol, differences=diffs, floats_within_tolerance=len(near),
                largest_float_difference=max(near)[0] if near else 0.0, at=max(near)[1] if near else None,
                runs={"then": {k: v for k, v in then.items() if k != "table"}, "now": {k: v for k, v in now.items() if k != "table"}},
                date=datetime.datetime.now().isoformat(timespec="seconds"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", default="quick", help="fast, quick or paper (default quick)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"), help="results.json to update (section g)")
    ap.add_argument("--against", metavar="REV", help="compare with the code of this git commit instead of --jobs 1")
    ap.add_argument("--tol", type=float, default=1e-3, help="with --against: floats within this are counted as equal")
    args = ap.parse_args(argv)
    if args.against:
        a = against(args.budget, args.against, args.tol)
        out = Path(args.out)
        res = json.loads(out.read_text()) if out.exists() else {}
        res.setdefault("g", {})["against"] = a
        out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(res, indent=1))
        print(f"this checkout {a['wall_s_now']:.0f} s / {a['rev'][:10]} {a['wall_s_then']:.0f} s = {a['ratio']:.2f} "
              f"(target <= {AGAINST_TARGET} at --budget quick); {len(a['differences'])} values differ beyond {args.tol:g}; "
              f"{a['floats_within_tolerance']} floats within it (largest {a['largest_float_difference']:.3g}); wrote g.against of {out}")
        if a["differences"]: print("\n".join(a["differences"][:20]))
        return 0 if not a["differences"] else 1
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
    if "against" in res.get("g", {}): g["against"] = res["g"]["against"]     # written by --against: kept
    res["g"] = g
    out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(res, indent=1))
    print(f"speed-up {speedup:.2f}x with {g['jobs_default']} processes (target {TARGET}x at --budget quick on 2 cores); "
          f"rows identical: {g['identical_rows']}; wrote section g of {out}")
    return 0 if g["identical_rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
