#!/usr/bin/env python
"""GPU readiness in at most 10 minutes, written to one JSON file: the benchmarks on the device, each Table-1 row at
`--budget paper` for a fixed time, and the projected wall time of the full paper runs from the measured step rates.

    python benchmarks/gpu_check.py --device cuda                             # on a lent GPU: about 8 minutes
    python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/gpu.json   # what tests/test_gpu_check.py runs

1. `benchmarks/run.py --quick --device DEV` (`--smoke` with `--tiny`), its results kept whole under "benchmarks".
2. For each row of Table 1 (two rows with `--tiny`): `tvae-nb run NAME --budget paper --device DEV --max-seconds S
   --source embedded`, from an empty folder. The machines that lend a GPU reach no download server, so the rows train
   on the embedded digits (less the paper budget's held-out fifth), which changes what a step sees but not what it
   costs. The step rate is the run's steps over its training time (`History.seconds`, read from the checkpoint).
3. The projection: the paper budget's steps over that rate, per row, and for the table with one row after another
   (`tvae-nb table1 --jobs 1`). It leaves out the periodic evaluations (every 30,000 steps) and the final N = 1000
   estimate, which `benchmarks/table1_job.py` measures.
"""
from __future__ import annotations

import argparse, datetime, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY_ROWS = ("VAE", "TVAE partial L")


def _env() -> dict:
    return dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def benchmarks(device: str, tiny: bool, out: Path, timeout: float) -> dict:
    "benchmarks/run.py on `device`, quick (or smoke), its results.json as a dict (or what went wrong)."
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke" if tiny else "--quick", "--device", device,
           "--out", str(out)]
    t0 = time.time()
    try: r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired: return {"error": f"timed out after {timeout:.0f} s", "command": " ".join(cmd[1:])}
    if r.returncode: return {"error": f"exit {r.returncode}: {r.stderr[-1500:]}", "command": " ".join(cmd[1:])}
    return {"command": " ".join(cmd[1:]), "wall_s": round(time.time() - t0, 1), "results": json.loads(out.read_text())}


def paper_row(name: str, device: str, seconds: float, folder: Path) -> dict:
    "Train experiment `name` at --budget paper for `seconds`; its step rate and the projected time of the full run."
    from tvae_nb.checkpoint import load_checkpoint
    from tvae_nb.recipes import make_experiment
    cmd = [sys.executable, "-m", "tvae_nb.cli", "run", name, "--budget", "paper", "--device", device, "--source",
           "embedded", "--max-seconds", str(seconds), "--out", str(folder), "--no-progress"]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=seconds + 300)
    if r.returncode: return {"error": f"exit {r.returncode}: {r.stderr[-1500:]}", "command": " ".join(cmd[3:])}
    ck = load_checkpoint(folder / "checkpoint.pt", make_experiment(name, "paper"))
    steps, train_s, total = ck["step"], ck["history"]["seconds"], make_experiment(name, "paper").train.steps
    rate = steps / train_s if steps and train_s > 0 else None
    return {"command": "tvae-nb " + " ".join(cmd[3:]), "wall_s": round(time.time() - t0, 1), "steps": steps,
            "train_seconds": round(train_s, 2), "steps_per_s": rate and round(rate, 2), "paper_steps": total,
            "projected_hours": rate and round(total / rate / 3600, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (the check's purpose), cpu or mps (default cuda)")
    ap.add_argument("--seconds", type=float, default=None, help="training time per row (default 40; 3 with --tiny)")
    ap.add_argument("--tiny", action="store_true", help="smoke benchmarks and two rows of 3 s: checks that it runs")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "gpu_check.json"), help="the JSON file to write")
    args = ap.parse_args(argv)
    import torch
    from tvae_nb.core import get_device
    from tvae_nb.table1 import TABLE1_ROWS
    try: dev = get_device(args.device)                     # a device that is not there is refused here, in one line
    except ValueError as e: ap.error(str(e))
    seconds = args.seconds if args.seconds is not None else (3.0 if args.tiny else 40.0)
    rows = {r: n for r, n in TABLE1_ROWS.items() if not args.tiny or r in TINY_ROWS}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        print(f"[gpu_check] benchmarks/run.py on {dev} ...", flush=True)
        bench = benchmarks(str(dev), args.tiny, d / "results.json", timeout=240 if not args.tiny else 300)
        res = {}
        for row, name in rows.items():
            res[row] = paper_row(name, str(dev), seconds, d / name)
            r = res[row]
            print(f"[gpu_check] {row}: " + (r["error"][:200] if "error" in r else
                  f"{r['steps']} steps in {r['train_seconds']:.0f} s, {r['steps_per_s']} steps/s; the paper's "
                  f"{r['paper_steps']:,} steps: {r['projected_hours']} h"), flush=True)
    done = [r for r in res.values() if r.get("projected_hours")]
    out = {"device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor(),
           "torch": torch.__version__, "python": platform.python_version(), "tiny": args.tiny,
           "seconds_per_row": seconds, "benchmarks": bench, "rows": res,
           "table1_projected_hours_one_after_another": round(sum(r["projected_hours"] for r in done), 2) if len(done) == len(res) else None,
           "wall_s": round(time.time() - t0, 1), "date": datetime.datetime.now().isoformat(timespec="seconds")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"[gpu_check] wrote {args.out} in {out['wall_s']:.0f} s; the table, one row after another: "
          f"{out['table1_projected_hours_one_after_another']} h", flush=True)
    return 0 if len(done) == len(res) and "error" not in bench else 1


if __name__ == "__main__":
    sys.exit(main())
