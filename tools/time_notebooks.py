"""Run notebooks top to bottom, one fresh process each, and record their wall-clock times.

    python tools/time_notebooks.py [NOTEBOOK ...] [--fast] [--threads 2] [--save] [--out nbs/timings.json]

Student mode by default (TVAE_NB_FAST unset); `--fast` sets TVAE_NB_FAST=1. `--save` writes the outputs back into
the notebooks (then run `nbdev-clean`). Times are merged into the JSON file under "student" or "fast", with the
machine's CPU count and thread setting, so the instructor guide can quote measured numbers.
"""
import argparse, json, os, platform, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from render_pages import RUNNER          # noqa: E402  (one notebook runner for the tools and the tests)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("notebooks", nargs="*")
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "nbs" / "timings.json"))
    a = ap.parse_args()
    nbs = [Path(p).resolve() for p in a.notebooks] or sorted(p for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    env.pop("TVAE_NB_FAST", None)
    if a.fast: env["TVAE_NB_FAST"] = "1"
    mode = "fast" if a.fast else "student"
    out = Path(a.out)
    data = json.loads(out.read_text()) if out.exists() else {}
    rows = data.setdefault(mode, {})
    failed = []
    for nb in nbs:
        t0 = time.time()
        r = subprocess.run([sys.executable, "-c", RUNNER, str(nb), "1" if a.save else "0"], cwd=ROOT, env=env)
        secs = time.time() - t0
        ok = r.returncode == 0
        if not ok: failed.append(nb.name)
        rows[nb.stem] = {"seconds": round(secs, 1), "ok": ok}
        print(f"{nb.name:40s} {secs:7.1f} s  {'ok' if ok else 'FAILED'}", flush=True)
    data.setdefault("machine", {}).update({"cpus": os.cpu_count(), "python": platform.python_version(),
                                           "processor": platform.machine()})
    data["machine"][f"{mode}_threads"] = a.threads
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
