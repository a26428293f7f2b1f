"""Shared pieces of the test suite.

`tiny_experiment` shrinks a registered experiment to a few seconds of CPU; the checkpoint and runner tests build their
configs from it. Tests marked `slow` (more than about ten seconds each: subprocess tables, DDP, notebooks) run in CI;
`pytest -m "not slow"` leaves them out for a quick loop while editing.
"""
from dataclasses import replace


def tiny_experiment(name: str = "table1-tvae-partial", # a registered experiment
                    steps: int = 12, # training steps
                    every: int = 4, # eval_every and checkpoint_every
                    n_caps: int = 4, cap_dim: int = 6, seq_len: int = 6, # the model's capsules and sequence length
                    L: int = 3, # the largest time window (the experiment's own if smaller)
                    hidden: tuple = (32, 32), # encoder hidden sizes
                    n_eval: int = 8, # held-out sequences
                    **train, # TrainConfig fields to change (kl_warmup defaults to 6)
                   ):
    "The fast-budget config of `name`, shrunk: a small model, a short sequence and a few steps."
    cfg = make_fast(name)
    m = replace(cfg.model, n_caps=n_caps, cap_dim=cap_dim, seq_len=seq_len, L=min(cfg.model.L, L), hidden=hidden)
    return replace(cfg, model=m, seq_len=seq_len, n_eval=n_eval, n_is=2, eval_every=every, checkpoint_every=every,
                   train=replace(cfg.train, steps=steps, **{"kl_warmup": 6, **train}))


def make_fast(name: str):
    "The registered experiment `name` at the fast budget."
    from tvae_nb.recipes import make_experiment
    return make_experiment(name, "fast")
