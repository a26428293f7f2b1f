"""A reproducible recipe sweep for the capsule TVAE: train candidate recipes, write one JSON row per run.

    python tools/sweep.py [--out nbs/results/sweep] [--jobs 2] [--only NAME ...] [--list]

Each candidate is the `quick` budget's (or, named "... @long", the `long` budget's) "TVAE partial L" (or another row), as the recipe was before this sweep (no
free bits; the "baseline" row), with some settings changed: mu
initialisation and whether mu is learned, free bits on z and u, KL warm-up, learning rate, batch size, capsule
shape, encoder width and steps. Every run uses seed 0, trains on rotating MNIST sequences and is evaluated with
`tvae_nb.metrics.evaluate` on 128 sequences: the early rows on the held-out test sequences (seed 1234), the rows
named "val ..." on validation sequences of training digits (seed 4321), which is what the recipe is chosen on:
log p(x) (each model's tightest valid estimator, N = 20), the latent diagnostics, and E_eq / E_inv under both
estimators with their nulls.

Resumable: a candidate whose name is already in OUT/rows.jsonl is skipped, so an interrupted sweep continues where
it stopped. `--jobs N` trains N candidates at once in separate processes with one torch thread each (results do not
depend on N: every run is seeded and single-threaded). Chapter 6 reads OUT/rows.jsonl.
"""
import argparse, json, multiprocessing as mp, os, sys, time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (base row, model overrides, training overrides). The base is the quick recipe of tvae_nb.metrics.
CANDIDATES = {
    "fb z0.25 u0.25":          ("partial", {}, dict(free_bits=0.25)),
    "vae fb0.25":              ("vae", {}, dict(free_bits=0.25)),
    "fb z0.25 u0":             ("partial", {}, dict(free_bits=0.25, free_bits_u=0.0)),
    "baseline (mu 10)":        ("partial", {}, {}),
    "vae":                     ("vae", {}, {}),
    "fb z0.5 u0.25":           ("partial", {}, dict(free_bits=0.5, free_bits_u=0.25)),
    "fb z0.25 u0.25 2x steps": ("partial", {}, dict(free_bits=0.25, steps=13000, kl_warmup=4000)),
    "fb z0.25 u0.25 wide":     ("partial", dict(hidden=(512, 384)), dict(free_bits=0.25)),
    "fb z0.25 u0.25 full L":   ("full", {}, dict(free_bits=0.25)),
    "mu 3":                    ("partial", dict(mu_init=3.0), {}),
    "fb z0.25 u0.25 mu 3":     ("partial", dict(mu_init=3.0), dict(free_bits=0.25)),
    "fb z0.25 u0.25 lr 2e-3":  ("partial", {}, dict(free_bits=0.25, lr=2e-3)),
    "fb z0.25 u0.25 batch 16": ("partial", {}, dict(free_bits=0.25, batch_size=16)),
    "mu 10 fixed":             ("partial", dict(learn_mu=False), {}),
    "fb z0.1 u0.1":            ("partial", {}, dict(free_bits=0.1)),
    "fb z0.25 u0.5":           ("partial", {}, dict(free_bits=0.25, free_bits_u=0.5)),
    "fb z0.1 u0.5":            ("partial", {}, dict(free_bits=0.1, free_bits_u=0.5)),
    "vae 2x steps":            ("vae", {}, dict(steps=13000, kl_warmup=4000)),
    "fb z0.25 u0.5 2x steps":  ("partial", {}, dict(free_bits=0.25, free_bits_u=0.5, steps=13000, kl_warmup=4000)),
    # the Bubble (non-shifting window): does a window over more of the cycle make it invariant over the whole cycle?
    "bubble fb z0.1 u0.5":     ("bubble", {}, dict(free_bits=0.1, free_bits_u=0.5)),
    "bubble L11 fb z0.1 u0.5": ("bubble-full", {}, dict(free_bits=0.1, free_bits_u=0.5)),
    # free bits that end (the fair-likelihood sweep): scored on VALIDATION sequences (training digits, their own seed),
    # never on the test sequences Table 1 reports. The "val" rows start from the committed recipe, fb z0.1 u0.5.
    "val fb z0.1 u0.5":              ("partial", {}, dict(free_bits=0.1, free_bits_u=0.5)),
    "val fb z0.1 u0.5 anneal 0.5":   ("partial", {}, dict(free_bits=0.1, free_bits_u=0.5, free_bits_anneal=0.5)),
    "val fb z0.1 u0.5 anneal 0.25":  ("partial", {}, dict(free_bits=0.1, free_bits_u=0.5, free_bits_anneal=0.25)),
    "val fb capsule z1.2 u6":        ("partial", {}, dict(free_bits=1.2, free_bits_u=6.0, free_bits_per="capsule")),
    "val fb z0.1 only, u warm-up 4000": ("partial", {}, dict(free_bits=0.1, free_bits_u=0.0, kl_warmup_u=4000)),
    "val vae":                       ("vae", {}, {}),
    "val fb z0.05 u0.25 anneal 0.5 @long": ("partial", {}, dict(free_bits=0.05, free_bits_u=0.25, free_bits_anneal=0.5)),
}
VALIDATION_SEED = 4321      # the validation sequences: training digits, a seed of their own (the test sequences use 1234)


def is_validation(name: str) -> bool: return name.startswith("val ")


def build(name: str):
    "The model config and training config of candidate `name`."
    from tvae_nb.recipes import capsule_config
    from tvae_nb.table1 import table1_setup
    base, mover, tover = CANDIDATES[name]
    if base == "vae": cfg = capsule_config("quick", model="vae")
    elif base.startswith("bubble"): cfg = capsule_config("quick", "full" if base == "bubble-full" else "bubble", shift=False)
    else: cfg = capsule_config("quick", base)
    cfg = replace(cfg, **mover)
    # candidates change the quick recipe as it was before this sweep chose free bits (the "baseline" row), so the
    # committed rows can be reproduced whatever the recipe is now
    before = replace(table1_setup("quick")["train"], free_bits=0.0, free_bits_u=None)
    tcfg = replace(before, **tover)
    if name.endswith("@long"):                                  # the long budget: the quick recipe with 4x the steps
        from tvae_nb.recipes import LONG_FACTOR
        tcfg = replace(tcfg, steps=LONG_FACTOR * tcfg.steps)
    return cfg, tcfg


def run_one(name: str) -> dict:
    "Train and evaluate one candidate (single torch thread); returns its JSON row."
    import torch
    torch.set_num_threads(1)
    from tvae_nb.data import load_mnist
    from tvae_nb.samplers import SequenceSampler, eval_sequences
    from tvae_nb.recipes import capsule_recipe
    from tvae_nb.metrics import evaluate
    from tvae_nb.train import fit
    from tvae_nb.tvae import make_model
    cfg, tcfg = build(name)
    r = capsule_recipe("quick")
    xtr, ytr = load_mnist("train", verbose=False)
    xte, yte = load_mnist("test", verbose=False)
    if is_validation(name):     # recipes are chosen on these, never on the test sequences
        ev = eval_sequences("rotation", n=r.n_eval, seq_len=cfg.seq_len, seed=VALIDATION_SEED, images=xtr, labels=ytr)
    else: ev = eval_sequences("rotation", n=r.n_eval, seq_len=cfg.seq_len, seed=1234, images=xte, labels=yte)
    model = make_model(cfg, seed=tcfg.seed)
    sampler = SequenceSampler(xtr, ytr, "rotation", cfg.seq_len, tcfg.batch_size, seed=tcfg.seed)
    t0 = time.time()
    hist = fit(model, sampler, tcfg, progress=False)
    secs = time.time() - t0
    res = evaluate(model, ev.x, n_is=r.n_is)
    mu = float(model.mu) if hasattr(model, "mu") else None
    return {"name": name, "model": cfg.to_dict(), "train": {k: v for k, v in tcfg.__dict__.items()},
            "mu_learned": mu, "train_seconds": round(secs, 1), "final_loss": hist.mean("loss"),
            "eval_set": "validation" if is_validation(name) else "test", "n_is": r.n_is, **res}


def _num(v): return float("nan") if v is None else v


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "nbs" / "results" / "sweep"))
    p.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    p.add_argument("--only", nargs="*", default=None, help="candidate names (default: all)")
    p.add_argument("--list", action="store_true", help="list the candidates and exit")
    a = p.parse_args(argv)
    if a.list:
        for n, (b, m, t) in CANDIDATES.items(): print(f"{n:<28} base={b} model={m} train={t}")
        return 0
    names = a.only or list(CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown: p.error(f"unknown candidates {unknown}; see --list")
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    rows_file = out / "rows.jsonl"
    done = {json.loads(l)["name"] for l in rows_file.read_text().splitlines() if l.strip()} if rows_file.exists() else set()
    todo = sorted((n for n in names if n not in done), key=lambda n: not n.endswith("@long"))   # the long runs first
    print(f"{len(done)} done, {len(todo)} to run with {a.jobs} process(es): {todo}", flush=True)
    ctx = mp.get_context("spawn")
    with ctx.Pool(a.jobs, maxtasksperchild=1) as pool:
        for row in pool.imap_unordered(run_one, todo):
            with open(rows_file, "a") as f: f.write(json.dumps(row) + "\n")      # one line per finished run
            print(f"{row['name']:<28} KL z {row['kl_z']:5.1f} KL u {row['kl_u']:5.1f} act z {row['active_z']:3d} "
                  f"log p(x) {row['log_px']:7.1f} E_eq_c/null {_num(row['E_eq_c_ratio']):.2f} "
                  f"det {_num(row['E_eq_det_c_ratio']):.2f} E_inv_c/null {_num(row['E_inv_c_ratio']):.2f} [{row['train_seconds']:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
