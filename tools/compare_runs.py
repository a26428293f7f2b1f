"""Compare two Table-1 folders (or two run folders) value for value, timings left out.

    python tools/compare_runs.py A B                       # every value equal (exit 0), or each difference (exit 1)
    python tools/compare_runs.py A B --tol 1e-3 --common-steps

For Table-1 folders it compares `table1.json` and every row's `metrics.jsonl`; for run folders, `metrics.jsonl`.
Keys that hold times (`seconds`, `wall_s`, ...) are dropped. `--tol X` lets two floats differ by at most X (absolute)
and reports the largest such difference; `--common-steps` compares metrics.jsonl only at the steps both runs
evaluated (for runs that evaluate at different intervals). Used to check that a refactor or a speed-up leaves the
numbers unchanged.
"""
import argparse, json, sys
from pathlib import Path

TIME_KEYS = ("seconds", "time", "wall")


def _strip(x):
    "`x` without the keys that hold times."
    if isinstance(x, dict): return {k: _strip(v) for k, v in x.items() if not any(s in k for s in TIME_KEYS)}
    if isinstance(x, list): return [_strip(v) for v in x]
    return x


def _diffs(a, b, where="", tol=0.0, near=None):
    "Every path at which `a` and `b` differ by more than `tol` (floats); `near` collects the float differences within it."
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from _diffs(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{where}.{k}", tol, near)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (u, v) in enumerate(zip(a, b)): yield from _diffs(u, v, f"{where}[{i}]", tol, near)
    elif isinstance(a, float) and isinstance(b, float) and a != b and abs(a - b) <= tol:
        if near is not None: near.append((abs(a - b), where))
    elif a != b: yield f"{where}: {a!r} != {b!r}"


def _jsonl(p: Path) -> list: return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]


def _at_common_steps(a: list, b: list) -> tuple:
    "The entries of two metrics.jsonl lists at the steps both hold."
    common = {e.get("step") for e in a} & {e.get("step") for e in b}
    return [e for e in a if e.get("step") in common], [e for e in b if e.get("step") in common]


def compare(a: Path, b: Path, tol: float = 0.0, common_steps: bool = False, near: list | None = None) -> list[str]:
    "The differences between folders `a` and `b` (an empty list: equal apart from timings, floats within `tol`)."
    out, files = [], []
    if (a / "table1.json").exists():
        files.append("table1.json")
        files += sorted(str(p.relative_to(a)) for p in a.glob("*/metrics.jsonl"))
    else: files.append("metrics.jsonl")
    for f in files:
        pa, pb = a / f, b / f
        if not pb.exists(): out.append(f"{f}: only in {a}"); continue
        load = _jsonl if f.endswith(".jsonl") else (lambda p: json.loads(p.read_text()))
        va, vb = _strip(load(pa)), _strip(load(pb))
        if common_steps and f.endswith(".jsonl"): va, vb = _at_common_steps(va, vb)
        out += [f"{f}{d}" for d in _diffs(va, vb, "", tol, near)]
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path); ap.add_argument("b", type=Path)
    ap.add_argument("--tol", type=float, default=0.0, help="largest absolute difference of two floats counted as equal")
    ap.add_argument("--common-steps", action="store_true", help="compare metrics.jsonl only at the steps both evaluated")
    args = ap.parse_args()
    near = []
    d = compare(args.a, args.b, args.tol, args.common_steps, near)
    print("\n".join(d) if d else f"equal apart from timings: {args.a} and {args.b}"
          + (f" ({len(near)} floats differ, by at most {max(near)[0]:.3g}, at {max(near)[1]})" if near else ""))
    sys.exit(1 if d else 0)
