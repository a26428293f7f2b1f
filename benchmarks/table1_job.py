"""Section h of results.json: the job a learner waits for, `tvae-nb table1 --budget quick`, against its own limit.

    python benchmarks/run.py --quick            # writes section h with the others
    python benchmarks/table1_job.py             # section h alone (about 2 minutes on one core)

Per Table-1 row at the quick budget, on one torch thread (as the table's worker processes run):
  step_s        the runner's training step (the row's recipe loss, backward, fused Adam), median of repeats
  gemm_s        the same step's matrix products alone (every mm/addmm/bmm of forward and backward, recorded from a real
                step by a dispatch mode, replayed at the same shapes on random data), timed round-robin with the step
  step_over_gemm  step_s / gemm_s: what the step costs beyond its GEMMs
  flops         FLOPs of one step, of one periodic evaluation and of the final N = 1000 likelihood (FlopCounterMode;
                the final one counted on one chunk of 50 samples, times 20: `log_px_curve` runs 20 identical chunks)
From a measured table (its table1.json, default nbs/results/table1-quick): each row's evaluation share of its wall time,
(eval_seconds + final_eval_seconds) / (train_seconds + final_eval_seconds), where train_seconds holds the periodic
evaluations; the table's wall time; and the whole job's FLOPs / (wall time x processes x one core's 2048^2 matmul
FLOP/s).
"""
from __future__ import annotations

import argparse, json, statistics, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

GEMMS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default}
TARGETS = dict(step_over_gemm=1.2, eval_share=0.05, flop_fraction=0.5)   # issue: step <= 1.2x GEMMs, eval <= 5 %, aim >= 0.5


class RecordGemms(TorchDispatchMode):
    "Record (op, shapes of its tensor arguments, its other arguments) of every matrix product run inside the block."
    def __init__(self): super().__init__(); self.calls = []
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in GEMMS:
            self.calls.append((func, [tuple(a.shape) if torch.is_tensor(a) else a for a in args], dict(kwargs or {})))
        return func(*args, **(kwargs or {}))


def gemm_replay(calls: list, seed: int = 0):
    "A zero-argument function running the recorded products on random tensors of the recorded shapes."
    g = torch.Generator().manual_seed(seed)
    args = [(f, [torch.randn(s, generator=g) if isinstance(s, tuple) else s for s in shapes], kw) for f, shapes, kw in calls]
    def run():
        for f, a, kw in args: f(*a, **kw)
    return run


def row_parts(row: str, cfg):
    "The model, sampler, optimiser and one training step of Table-1 row `row`, built as the runner builds them."
    from tvae_nb.tvae import make_model
    from tvae_nb.evaluation import make_sampler
    from tvae_nb.train import make_optimizer, RecipeLoss
    tc = cfg.train
    model = make_model(cfg.model, seed=tc.seed)
    sampler = make_sampler(cfg)
    opt = make_optimizer(model.parameters(), tc.optimizer, tc.lr, tc.momentum)
    loss_fn = RecipeLoss(tc)
    def step():
        terms = loss_fn(model, sampler.sample(), 1.0)
        opt.zero_grad(set_to_none=True); terms.loss.backward(); opt.step()
    return model, step


def flops_of(fn) -> float:
    fc = FlopCounterMode(display=False)
    with fc: fn()
    return float(fc.get_total_flops())


def bench_rows(reps: int = 30, warmup: int = 5, rows=None, log=print) -> dict:
    "Step, GEMM-only time and FLOPs of every Table-1 row at the quick budget, on one thread."
    from tvae_nb.table1 import table1_experiments
    from tvae_nb.evaluation import eval_batch, evaluate_model
    threads = torch.get_num_threads(); torch.set_num_threads(1)
    try:
        exps = table1_experiments("quick")
        out = {}
        for row, cfg in exps.items():
            if rows is not None and row not in rows: continue
            model, step = row_parts(row, cfg)
            for _ in range(warmup): step()
            rec = RecordGemms()
            with rec: step()
            replay = gemm_replay(rec.calls)
            ts = {"step": [], "gemm": []}
            for r in range(reps + 2):                                   # round-robin: the load affects both alike
                for k, f in (("step", step), ("gemm", replay)):
                    t0 = time.perf_counter(); f(); dt = time.perf_counter() - t0
                    if r >= 2: ts[k].append(dt)
            t_step, t_gemm = statistics.median(ts["step"]), statistics.median(ts["gemm"])
            batch = eval_batch(cfg)
            f_step = flops_of(step)
            f_eval = flops_of(lambda: evaluate_model(model, batch, seed=cfg.eval_seed, n_is=cfg.n_is))
            n_final = cfg.n_is_final or cfg.n_is
            with torch.no_grad(): f_chunk = flops_of(lambda: model.eval().log_weights(batch.x, 50, per_frame=True))
            model.train()
            n_evals = cfg.train.steps // cfg.eval_every + (cfg.train.steps % cfg.eval_every != 0)
            out[row] = dict(step_s=t_step, gemm_s=t_gemm, step_over_gemm=t_step / t_gemm, gemm_calls=len(rec.calls),
                            steps=cfg.train.steps, evaluations=n_evals, step_flops=f_step, eval_flops=f_eval,
                            final_flops=f_chunk * n_final / 50,
                            job_flops=f_step * cfg.train.steps + f_eval * n_evals + f_chunk * n_final / 50)
            log(f"h) {row}: step {t_step * 1e3:.1f} ms, its GEMMs {t_gemm * 1e3:.1f} ms ({t_step / t_gemm:.2f}x), "
                f"{f_step / 1e9:.2f} GFLOP/step")
        return out
    finally: torch.set_num_threads(threads)


def matmul_flops_one_core(n: int = 2048, reps: int = 5) -> float:
    "FLOP/s of an n x n fp32 matmul on one torch thread (median)."
    threads = torch.get_num_threads(); torch.set_num_threads(1)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n); torch.mm(a, b)
        ts = []
        for _ in range(reps): t0 = time.perf_counter(); torch.mm(a, b); ts.append(time.perf_counter() - t0)
        return 2.0 * n ** 3 / statistics.median(ts)
    finally: torch.set_num_threads(threads)


def section_h(table: Path = ROOT / "nbs" / "results" / "table1-quick" / "table1.json", reps: int = 30, log=print,
              rows=None) -> dict:
    "Section h: the per-row measurements here, and the shares, wall time and FLOP fraction of the measured table."
    per_row = bench_rows(reps=reps, rows=rows, log=log)
    mm = matmul_flops_one_core()
    h = dict(budget="quick", threads=1, rows=per_row, matmul_flop_per_s_one_core=mm,
             step_over_gemm_max=max(r["step_over_gemm"] for r in per_row.values()))
    if table.exists():
        t = json.loads(table.read_text())
        h["table"] = dict(path=str(table.relative_to(ROOT)) if table.is_relative_to(ROOT) else str(table),
                          wall_s=t["seconds"], jobs=t["jobs"])
        shares = {}
        for r in t["rows"]:
            if "final_eval_seconds" not in r: continue                     # a table from before these timings
            wall = r["train_seconds"] + r["final_eval_seconds"]
            shares[r["model"]] = dict(train_s=r["train_seconds"], periodic_eval_s=r["eval_seconds"],
                                      final_eval_s=r["final_eval_seconds"],
                                      eval_share=(r["eval_seconds"] + r["final_eval_seconds"]) / wall,
                                      periodic_eval_share=r["eval_seconds"] / wall)
        h["table"]["rows"] = shares
        if shares: h["eval_share_max"] = max(s["eval_share"] for s in shares.values())
        if len(per_row) == len(t["rows"]):
            total = sum(r["job_flops"] for r in per_row.values())
            h["job_flops"] = total
            h["flop_fraction"] = total / (t["seconds"] * t["jobs"] * mm)   # per process, against one core's matmul
    h["targets"] = TARGETS
    return h


def fmt(h: dict) -> str:
    lines = [f"{'row':<16}{'step ms':>9}{'GEMM ms':>9}{'ratio':>7}{'GFLOP/step':>11}{'eval share':>11}"]
    shares = h.get("table", {}).get("rows", {})
    for row, r in h["rows"].items():
        s = shares.get(row, {}).get("eval_share")
        lines.append(f"{row:<16}{r['step_s'] * 1e3:9.1f}{r['gemm_s'] * 1e3:9.1f}{r['step_over_gemm']:7.2f}"
                     f"{r['step_flops'] / 1e9:11.2f}{'' if s is None else f'{100 * s:10.1f}%'}")
    if "table" in h: lines.append(f"table {h['table']['path']}: {h['table']['wall_s']:.0f} s with {h['table']['jobs']} processes")
    if "flop_fraction" in h:
        lines.append(f"whole job {h['job_flops'] / 1e12:.2f} TFLOP; FLOP/s per process / one core's 2048^2 matmul "
                     f"({h['matmul_flop_per_s_one_core'] / 1e9:.1f} GFLOP/s): {h['flop_fraction']:.2f}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path, default=ROOT / "nbs" / "results" / "table1-quick" / "table1.json")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.json", help="results.json to update (section h)")
    args = ap.parse_args(argv)
    h = section_h(args.table, args.reps, log=lambda m: print(m, file=sys.stderr, flush=True))
    res = json.loads(args.out.read_text()) if args.out.exists() else {}
    res["h"] = h
    args.out.parent.mkdir(parents=True, exist_ok=True); args.out.write_text(json.dumps(res, indent=1))
    print(fmt(h)); print(f"wrote section h of {args.out}")


if __name__ == "__main__":
    main()
