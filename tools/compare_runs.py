"""Compare two Table-1 folders (or two run folders) value for value, timings left out.

    python tools/compare_runs.py A B

For Table-1 folders it compares `table1.json` and every row's `metrics.jsonl`; for run folders, `metrics.jsonl`.
Keys that hold times (`seconds`, `wall_s`, ...) are dropped. Exit status 0 when everything is equal, 1 otherwise,
with each difference printed. Used to check that a refactor or a speed-up leaves the numbers unchanged.
"""
import argparse, json, sys
from pathlib import Path

TIME_KEYS = ("seconds", "time", "wall")


def _strip(x):
    "`x` without the keys that hold times."
    if isinstance(x, dict): return {k: _strip(v) for k, v in x.items() if not any(s in k for s in TIME_KEYS)}
    if isinstance(x, list): return [_strip(v) for v in x]
    return x


def _diffs(a, b, where=""):
    "Every path at which `a` and `b` differ."
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from _diffs(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (u, v) in enumerate(zip(a, b)): yield from _diffs(u, v, f"{where}[{i}]")
    elif a != b: yield f"{where}: {a!r} != {b!r}"


def _jsonl(p: Path) -> list: return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]


def compare(a: Path, b: Path) -> list[str]:
    "The differences between folders `a` and `b` (an empty list: equal apart from timings)."
    out, files = [], []
    if (a / "table1.json").exists():
        files.append("table1.json")
        files += sorted(str(p.relative_to(a)) for p in a.glob("*/metrics.jsonl"))
    else: files.append("metrics.jsonl")
    for f in files:
        pa, pb = a / f, b / f
        if not pb.exists(): out.append(f"{f}: only in {a}"); continue
        load = _jsonl if f.endswith(".jsonl") else (lambda p: json.loads(p.read_text()))
        out += [f"{f}{d}" for d in _diffs(_strip(load(pa)), _strip(load(pb)))]
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path); ap.add_argument("b", type=Path)
    args = ap.parse_args()
    d = compare(args.a, args.b)
    print("\n".join(d) if d else f"equal apart from timings: {args.a} and {args.b}")
    sys.exit(1 if d else 0)
