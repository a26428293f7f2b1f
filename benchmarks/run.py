#!/usr/bin/env python
"""Performance benchmarks for tvae_nb (issue #8): one run, one machine, ratios measured side by side.

    python benchmarks/run.py --quick              # about 1-3 minutes on a 2-core laptop CPU
    python benchmarks/run.py                      # more repeats
    python benchmarks/run.py --smoke --out /tmp/r.json   # tiny sizes, 1 repeat: checks that everything runs
    python benchmarks/run.py --device cuda        # on a GPU (times are synchronised)

Sections (keys of results.json):
  a  step       training-step throughput of the paper's 18x18-capsule shifting TVAE (S=18, L=13, K=3, batch of 8
                sequences of 28x28 frames, MLP sizes of the paper), forward + backward + Adam
  b  share      the share of that step spent in `capsule_energy`
  c  energy     `capsule_energy` forward+backward against a ConvTranspose3d formulation of the paper's operator and
                against a naive loop of torch.roll; and the whole step with each of them swapped in
  d  sequences  `make_sequences` (rotation, S=18) against a per-frame loop of torchvision's `rotate`
  e  flops      the step's achieved FLOP/s against this machine's dense fp32 matmul FLOP/s
  f  memory     peak memory of a short training run at the paper config (run in a fresh child process)
  h  table1     the job `tvae-nb table1 --budget quick` against its limit: per row, the step against its own GEMMs,
                FLOPs, the evaluation's share of the row's time, and the job's FLOP/s (benchmarks/table1_job.py)

Every timing is the median over repeats; the variants being compared are timed round-robin (interleaved), so that
a change of machine load affects them alike. The ratios are the numbers to compare across machines.
"""
from __future__ import annotations

import argparse, contextlib, datetime, json, math, os, platform, resource, statistics, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))        # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))          # table1_job (section h)

import torch
import torch.nn.functional as F

import tvae_nb
import tvae_nb.topography as topography
from tvae_nb.topography import capsule_energy
from tvae_nb.tvae import TVAEConfig, make_model
from tvae_nb.data import make_sequences

# ------------------------------------------------------------------------------------------------ settings
PAPER = dict(n_caps=18, cap_dim=18, seq_len=18, L=13, K=3, shift=True)     # the paper's shifting TVAE on MNIST
MODES = {  # model overrides, repeats and sizes per mode
    "smoke": dict(model=dict(n_caps=6, cap_dim=6), batch=2, warmup=1, reps_step=1, reps_energy=1, reps_seq=1,
                  seq_batch=4, matmul_n=256, reps_matmul=1, mem_steps=2, prof_steps=1),
    "quick": dict(model={}, batch=8, warmup=1, reps_step=7, reps_energy=15, reps_seq=3,
                  seq_batch=64, matmul_n=2048, reps_matmul=7, mem_steps=10, prof_steps=3),
    "full":  dict(model={}, batch=8, warmup=2, reps_step=25, reps_energy=75, reps_seq=11,
                  seq_batch=64, matmul_n=2048, reps_matmul=15, mem_steps=20, prof_steps=5),
}
OTHER_SECTIONS = ("g",)   # written by benchmarks/table1_walltime.py (tvae-nb table1 wall time, --jobs 1 vs the default)
TARGETS = {  # name: (section, key, comparison, threshold, description)
    "energy_vs_conv":    ("c", "speedup_vs_conv", ">=", 30.0, "capsule_energy fwd+bwd vs ConvTranspose3d reference"),
    "energy_vs_roll":    ("c", "speedup_vs_roll", ">=", 3.0, "capsule_energy fwd+bwd vs naive torch.roll loop"),
    "step_vs_conv_step": ("c", "step_speedup_vs_conv", ">=", 2.5, "training step vs the same step with the conv energy"),
    "energy_share":      ("b", "share", "<", 0.05, "share of the training step spent in capsule_energy"),
    "sequences":         ("d", "speedup", ">=", 20.0, "make_sequences vs per-frame torchvision rotate loop"),
    "flop_fraction":     ("e", "fraction_of_matmul", ">=", 0.6, "step FLOP/s as a fraction of 2048^2 matmul FLOP/s"),
    "peak_memory":       ("f", "peak_rss_gb", "<", 2.0, "peak RSS of a short training run (GB)"),
    "quick_step_vs_gemm": ("h", "step_over_gemm_max", "<=", 1.2, "quick Table-1 step / its own GEMMs (worst row)"),
    "quick_eval_share":  ("h", "eval_share_max", "<=", 0.05, "evaluation share of a quick Table-1 row's time (worst row)"),
    "quick_flop_fraction": ("h", "flop_fraction", ">=", 0.5, "quick table FLOP/s per process / one core's matmul FLOP/s"),
}


# ------------------------------------------------------------------------------------------------ timing
def synchronize(device: torch.device):
    "Wait for queued kernels on `device` (a no-op on CPU)."
    if device.type == "cuda": torch.cuda.synchronize(device)


def interleaved(fns: dict, reps: int, device: torch.device, warmup: int = 2) -> dict:
    "Time each of `fns` (name -> zero-arg callable) `reps` times round-robin after `warmup` rounds; name -> list of s."
    times = {k: [] for k in fns}
    for r in range(warmup + reps):
        for k, f in fns.items():
            synchronize(device); t0 = time.perf_counter()
            f()
            synchronize(device); dt = time.perf_counter() - t0
            if r >= warmup: times[k].append(dt)
    return times


def med(ts) -> float: return statistics.median(ts)


# ------------------------------------------------------------------------------------------------ references
def roll_capsule_energy(u2, L, K, shift=True):
    "Naive W u²: a double loop over the L*K window offsets, each adding a torch.roll of the whole tensor."
    v = torch.zeros_like(u2)
    for dl in range(-(L - 1) // 2, (L - 1) // 2 + 1):
        for k in range(-(K - 1) // 2, (K - 1) // 2 + 1):
            v = v + torch.roll(u2, shifts=(-dl, -(int(shift) * dl + k)), dims=(1, 3))
    return v


_KERNELS = {}

def conv_kernel(L, K, shift, dtype, device):
    "The banded 0/1 kernel (1, 1, L, 1, 2(σh+k0)+1) over (time, capsule, unit): ones at (h+δ, 0, σh+k0+σδ+k)."
    key = (L, K, bool(shift), dtype, str(device))
    if key not in _KERNELS:
        h, k0, sg = (L - 1) // 2, (K - 1) // 2, int(shift)
        w = torch.zeros(L, 2 * (sg * h + k0) + 1, dtype=dtype)
        for dl in range(-h, h + 1):
            for k in range(-k0, k0 + 1):
                w[h + dl, sg * h + k0 + sg * dl + k] = 1.0
        # conv_transpose3d correlates with the flipped kernel, so store it flipped (the band is symmetric anyway)
        _KERNELS[key] = w.flip(0, 1).reshape(1, 1, L, 1, -1).to(device)
    return _KERNELS[key]


def circular_pad_cat(x, dim, p):
    "Pad `x` circularly by `p` along `dim` by concatenating wrapped copies (p may exceed the size)."
    if p == 0: return x
    n, r = x.shape[dim], -(-p // x.shape[dim])                             # r copies each side cover p
    return torch.cat([x] * (2 * r + 1), dim).narrow(dim, r * n - p, n + 2 * p)


def conv_capsule_energy(u2, L, K, shift=True):
    """The paper code's formulation: W as a fixed ConvTranspose3d kernel over (time, capsule, unit) with a band of
    ones, circular boundaries by concatenating wrapped slices (padding by concatenation), cropped back to S x C x D."""
    B, S, C, D = u2.shape
    w = conv_kernel(L, K, shift, u2.dtype, u2.device)
    pt, pd = (L - 1) // 2, (w.shape[-1] - 1) // 2                         # reach along time and along units
    x = u2[:, None]                                                        # (B, 1, S, C, D): one input channel
    x = circular_pad_cat(x, 2, pt)                                         # (B, 1, S+2pt, C, D)
    x = circular_pad_cat(x, 4, pd)                                         # (B, 1, S+2pt, C, D+2pd)
    # stride-1 conv_transpose with padding p drops p outputs at each end: (S + 2pt) + (L-1) - 2(L-1) = S frames
    v = F.conv_transpose3d(x, w, padding=(L - 1, 0, w.shape[-1] - 1))
    return v[:, 0]                                                         # (B, S, C, D)


_MODULES = {}

def conv_module_energy(u2, L, K, shift=True):
    """The same operator held as an nn.ConvTranspose3d module whose weight is left trainable (requires_grad=True, the
    module default): autograd then also computes dL/dW every step. Shown for comparison; not the target reference."""
    key = (L, K, bool(shift), u2.dtype, str(u2.device))
    if key not in _MODULES:
        w = conv_kernel(L, K, shift, u2.dtype, u2.device)
        m = torch.nn.ConvTranspose3d(1, 1, tuple(w.shape[2:]), padding=(L - 1, 0, w.shape[-1] - 1), bias=False)
        with torch.no_grad(): m.weight.copy_(w)
        _MODULES[key] = m.to(device=u2.device, dtype=u2.dtype)
    m = _MODULES[key]
    x = circular_pad_cat(circular_pad_cat(u2[:, None], 2, (L - 1) // 2), 4, (m.weight.shape[-1] - 1) // 2)
    m.weight.grad = None
    return m(x)[:, 0]


@contextlib.contextmanager
def swapped_energy(fn):
    "Temporarily replace tvae_nb.topography.capsule_energy (looked up at call time by CapsuleTopography) by `fn`."
    orig = topography.capsule_energy
    topography.capsule_energy = fn
    try: yield
    finally: topography.capsule_energy = orig


class TimedEnergy:
    """capsule_energy timed in place inside the step: the forward directly, the backward from the moment the gradient
    of v = W u² is ready (a hook on v) to the moment the gradient of u² is ready (a hook on u²)."""
    def __init__(self, device): self.device, self.fwd, self.bwd = device, [], []

    def _now(self):
        synchronize(self.device); return time.perf_counter()

    def __call__(self, u2, L, K, shift=True):
        t0 = self._now()
        v = capsule_energy(u2, L, K, shift)
        self.fwd.append(self._now() - t0)
        if v.requires_grad and u2.requires_grad:
            mark = []
            v.register_hook(lambda g: mark.append(self._now()))
            u2.register_hook(lambda g: self.bwd.append(self._now() - mark[-1]))
        return v


def identity_energy(u2, L, K, shift=True):
    "Zero-cost stand-in for W u²: returns u² itself (same shape, gradient still flows)."
    return u2


# ------------------------------------------------------------------------------------------------ sections
def paper_model(device, mode, seed=0):
    cfg = TVAEConfig(**{**PAPER, **MODES[mode]["model"]})
    model = make_model(cfg, seed=seed).to(device)
    return cfg, model


OPTIMIZERS = {"library": "tvae_nb.train.make_optimizer('adam', lr=1e-3): what training uses (fused Adam where available)",
              "adam": "torch.optim.Adam(lr=1e-3), PyTorch's default (unfused) implementation",
              "adam_fused": "torch.optim.Adam(lr=1e-3, fused=True)",
              "sgd": "torch.optim.SGD(lr=1e-3, momentum=0.9)"}


def make_optimizer(params, name):
    "The optimiser `name` (see OPTIMIZERS), or None where this torch cannot build it."
    params = list(params)
    if name == "library":
        from tvae_nb.train import make_optimizer as library_optimizer
        return library_optimizer(params, "adam", lr=1e-3)
    if name == "adam": return torch.optim.Adam(params, lr=1e-3)
    if name == "sgd": return torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    try: return torch.optim.Adam(params, lr=1e-3, fused=True)
    except (RuntimeError, TypeError, ValueError): return None


def make_step(model, opt, x):
    def step():
        opt.zero_grad(set_to_none=True)
        model.loss(x).loss.backward()
        opt.step()
    return step


def linear_flops_by_hand(model, n_frames: int) -> float:
    "2*N*in*out per Linear forward; backward adds the weight gradient and (except for a first layer) the input gradient."
    total = 0.0
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear):
            first = name.endswith("encoder.net.0")                         # its input is data: no input gradient
            total += 2.0 * n_frames * m.in_features * m.out_features * (2 if first else 3)
    return total


def bench_step_and_energy(device, mode, optim_name, log):
    "Sections a, b, c and e (their step timings are interleaved in one loop)."
    P = MODES[mode]
    cfg, model = paper_model(device, mode)
    B, S, C, D, L, K = P["batch"], cfg.seq_len, cfg.n_caps, cfg.cap_dim, cfg.L, cfg.K
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, S, *cfg.x_shape, generator=g).to(device)              # random sequences in [0, 1]
    opt = make_optimizer(model.parameters(), optim_name)
    step = make_step(model, opt, x)

    # check that the swap reaches the model's forward
    calls = []
    def counting(u2, L, K, shift=True): calls.append(tuple(u2.shape)); return capsule_energy(u2, L, K, shift)
    with swapped_energy(counting): step()
    assert calls == [(B, S, C, D)], f"monkeypatching capsule_energy did not reach the TVAE forward: {calls}"

    # ---- c) capsule_energy alone: fwd+bwd at the step's shape, three formulations interleaved
    u2 = torch.rand(B, S, C, D, generator=g).to(device)
    gout = torch.randn(B, S, C, D, generator=g).to(device)
    def fwd_bwd(f):
        def run():
            a = u2.detach().requires_grad_(True)
            f(a, L, K, True).backward(gout)
        return run
    def fwd_only(f):
        def run():
            with torch.no_grad(): f(u2, L, K, True)
        return run
    log("c) capsule_energy fwd+bwd: ours / conv_transpose3d / roll loop ...")
    te = interleaved({"ours": fwd_bwd(capsule_energy), "conv": fwd_bwd(conv_capsule_energy),
                      "roll": fwd_bwd(roll_capsule_energy), "conv_trainable": fwd_bwd(conv_module_energy),
                      "ours_fwd": fwd_only(capsule_energy),
                      "conv_fwd": fwd_only(conv_capsule_energy), "roll_fwd": fwd_only(roll_capsule_energy)},
                     P["reps_energy"], device, P["warmup"])
    # correctness of the references (and of the swap): values and gradients, float64 at the paper config
    u64 = torch.rand(2, S, C, D, dtype=torch.float64, generator=g).to(device).requires_grad_(True)
    g64 = torch.randn(2, S, C, D, dtype=torch.float64, generator=g).to(device)
    errs = {}
    for name, f in (("conv", conv_capsule_energy), ("roll", roll_capsule_energy), ("conv_trainable", conv_module_energy)):
        for shift in (True, False):
            r = capsule_energy(u64, L, K, shift)
            v = f(u64, L, K, shift)
            gv, = torch.autograd.grad(v, u64, g64)
            gr, = torch.autograd.grad(r, u64, g64)
            errs[f"{name}_max_abs_err_shift{int(shift)}"] = float((v - r).detach().abs().max())
            errs[f"{name}_grad_max_abs_err_shift{int(shift)}"] = float((gv - gr).abs().max())

    # ---- a, b, c, e) the training step with each energy, interleaved
    log(f"a) training step ({optim_name}): ours / stand-in / conv swapped in / roll swapped in ...")
    def with_energy(fn):
        def run():
            with swapped_energy(fn): step()
        return run
    timer = TimedEnergy(device)
    ts = interleaved({"ours": step, "timed": with_energy(timer), "standin": with_energy(identity_energy),
                      "conv": with_energy(conv_capsule_energy),
                      "roll": with_energy(roll_capsule_energy), "conv_trainable": with_energy(conv_module_energy)},
                     P["reps_step"], device, P["warmup"])
    t_step = med(ts["ours"])

    # ---- e) FLOPs of one step, and the machine's matmul FLOP/s (interleaved with steps, so under the same load)
    from torch.utils.flop_counter import FlopCounterMode
    fc = FlopCounterMode(display=False)
    with fc: step()
    flops = float(fc.get_total_flops())
    flops_hand = linear_flops_by_hand(model, B * S)
    n = P["matmul_n"]
    a_ = torch.randn(n, n, generator=g).to(device); b_ = torch.randn(n, n, generator=g).to(device)
    log(f"e) {n}x{n} fp32 matmul, interleaved with steps ...")
    tm = interleaved({"matmul": lambda: torch.mm(a_, b_), "step": step}, P["reps_matmul"], device, P["warmup"])
    mm_flops = 2.0 * n ** 3 / med(tm["matmul"])
    t_step_e = med(tm["step"])

    # ---- time in the optimiser alone and in forward+backward alone, for the FLOP/s breakdown
    def fwd_bwd_only():
        model.zero_grad(set_to_none=True); model.loss(x).loss.backward()
    model.zero_grad(set_to_none=True); model.loss(x).loss.backward()
    others = {k: make_optimizer(model.parameters(), k) for k in OPTIMIZERS if k != optim_name}
    others = {k: o for k, o in others.items() if o is not None}
    tparts = interleaved({"fwd_bwd": fwd_bwd_only, "opt_step": opt.step, **{f"opt_{k}": o.step for k, o in others.items()}},
                         P["reps_matmul"], device, P["warmup"])
    opt_times = {optim_name: med(tparts["opt_step"]), **{k: med(tparts[f"opt_{k}"]) for k in others}}

    # ---- b) profiler view of the step: share of time under capsule_energy's forward and backward
    prof = profile_step(step, P["prof_steps"], device)

    a = dict(optimizer_step_s_by_optimizer=opt_times, config={k: getattr(cfg, k) for k in ("n_caps", "cap_dim", "seq_len", "L", "K", "shift")},
             optimizer=OPTIMIZERS[optim_name],
             batch_sequences=B, seq_len=S, frames_per_step=B * S, n_latent=cfg.n, L=L, K=K, shift=True,
             hidden="paper (3n, 2n) / (2n, 3n)", n_params=sum(p.numel() for p in model.parameters()),
             step_s=t_step, step_s_all=ts["ours"], sequences_per_s=B / t_step, frames_per_s=B * S / t_step,
             fwd_bwd_s=med(tparts["fwd_bwd"]), optimizer_step_s=med(tparts["opt_step"]))
    t_energy = med(te["ours"])
    nw = len(timer.fwd) - len(ts["timed"])                                 # drop the warm-up rounds
    assert len(timer.bwd) == len(timer.fwd), "backward hooks of the timed capsule_energy did not fire"
    t_in_place = [f_ + b_ for f_, b_ in zip(timer.fwd[nw:], timer.bwd[nw:])]
    b = dict(share=sum(t_in_place) / sum(ts["timed"]),
             method="capsule_energy timed in place during the steps (forward: wall time of the call; backward: from "
                    "the hook on the gradient of W u² to the hook on the gradient of u²), summed / the same steps' time",
             energy_in_place_fwd_s=med(timer.fwd[nw:]), energy_in_place_bwd_s=med(timer.bwd[nw:]),
             share_standin=(t_step - med(ts["standin"])) / t_step,
             share_standin_method="(step - step with capsule_energy replaced by an identity stand-in) / step, "
                                  "interleaved medians (a difference of two noisy medians: can come out negative)",
             share_isolated=t_energy / t_step,
             share_isolated_method="capsule_energy fwd+bwd timed alone at the step's shape / step",
             share_profiler=prof["share"], share_profiler_method=prof["method"],
             step_standin_s=med(ts["standin"]), energy_fwd_bwd_s=t_energy)
    c = dict(shape=[B, S, C, D], energy_fwd_bwd_s=dict(ours=t_energy, conv=med(te["conv"]), roll=med(te["roll"]),
                                                        conv_trainable=med(te["conv_trainable"])),
             energy_fwd_s=dict(ours=med(te["ours_fwd"]), conv=med(te["conv_fwd"]), roll=med(te["roll_fwd"])),
             speedup_vs_conv=med(te["conv"]) / t_energy, speedup_vs_roll=med(te["roll"]) / t_energy,
             step_s=dict(ours=t_step, conv=med(ts["conv"]), roll=med(ts["roll"]), standin=med(ts["standin"]),
                         conv_trainable=med(ts["conv_trainable"])),
             speedup_vs_conv_trainable=med(te["conv_trainable"]) / t_energy,
             step_speedup_vs_conv_trainable=med(ts["conv_trainable"]) / t_step,
             step_speedup_vs_conv=med(ts["conv"]) / t_step, step_speedup_vs_roll=med(ts["roll"]) / t_step,
             correctness_float64=errs,
             conv_reference="F.conv_transpose3d, 1 channel, banded 0/1 kernel (L, 1, L+K-1) over (time, capsule, unit), "
                            "circular padding by concatenation; conv_trainable: the same as an nn.ConvTranspose3d "
                            "module with its weight left requires_grad=True (dL/dW computed each step)")
    e = dict(step_flops=flops, step_flops_linear_by_hand=flops_hand, step_s=t_step_e,
             step_flop_per_s=flops / t_step_e, matmul_n=n, matmul_flop_per_s=mm_flops,
             fraction_of_matmul=flops / t_step_e / mm_flops,
             fwd_bwd_flop_per_s=flops / a["fwd_bwd_s"], fwd_bwd_fraction_of_matmul=flops / a["fwd_bwd_s"] / mm_flops,
             fraction_of_matmul_by_optimizer={k: flops / (a["fwd_bwd_s"] + t) / mm_flops for k, t in opt_times.items()},
             fraction_by_optimizer_method="FLOPs / (median fwd+bwd time + median optimiser-step time) / matmul FLOP/s",
             method="torch.utils.flop_counter.FlopCounterMode over one step (forward+backward; the optimiser's "
                    "elementwise work is not counted) / median step time; matmul timed interleaved with the steps")
    return a, b, c, e, prof


def profile_step(step, n_steps, device):
    "torch.profiler over `n_steps` steps, with capsule_energy wrapped in record_function; returns share and top ops."
    from torch.profiler import profile, record_function, ProfilerActivity
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    def marked(u2, L, K, shift=True):
        with record_function("capsule_energy.forward"):
            return capsule_energy(u2, L, K, shift)
    step()
    with swapped_energy(marked), profile(activities=acts) as p:
        for _ in range(n_steps):
            with record_function("train_step"): step()
    ev = p.key_averages()
    tot = {e.key: e.cpu_time_total for e in ev}
    t_step = tot.get("train_step", float("nan"))
    # backward of capsule_energy: the autograd nodes it creates (the library's Function is _WindowSum; with plain
    # autograd they would be IndexSelect/Unfold backward nodes)
    bwd_names = [k for k in tot if k.startswith("_WindowSumBackward")]
    fwd = tot.get("capsule_energy.forward", 0.0)
    bwd = sum(tot[k] for k in bwd_names)
    top = [dict(name=e.key, self_cpu_ms=e.self_cpu_time_total / 1e3 / n_steps, calls=e.count // n_steps)
           for e in sorted(ev, key=lambda e: -e.self_cpu_time_total)[:12]]
    return dict(share=(fwd + bwd) / t_step if t_step == t_step and bwd_names else None,
                method="torch.profiler CPU time of capsule_energy's forward scope + its _WindowSumBackward nodes / "
                       "step scope" if bwd_names else "not available: backward nodes not identifiable",
                top_ops_per_step=top)


def bench_sequences(device, mode, log):
    "Section d: batched make_sequences vs a per-frame loop of torchvision.transforms.functional.rotate."
    P = MODES[mode]
    B, S = P["seq_batch"], 18
    g = torch.Generator().manual_seed(1)
    images = torch.rand(B, 1, 28, 28, generator=g).to(device)
    start = torch.randint(0, S, (B,), generator=g)
    try:
        import torchvision.transforms.functional as TF
        from torchvision.transforms import InterpolationMode
    except ImportError:
        TF = None
    def batched(): return make_sequences(images, "rotation", S, start=start)
    def loop():
        out = torch.empty(B, S, 1, 28, 28, device=device)
        for b in range(B):
            for l in range(S):
                angle = 360.0 / S * float((int(start[b]) + l) % S)
                out[b, l] = TF.rotate(images[b], angle, interpolation=InterpolationMode.BILINEAR)
        return out
    log(f"d) make_sequences (rotation, S={S}, batch {B}) vs per-frame torchvision rotate loop ...")
    fns = {"make_sequences": batched}
    if TF is not None: fns["loop"] = loop
    t = interleaved(fns, P["reps_seq"], device, warmup=1)
    d = dict(batch=B, seq_len=S, transform="rotation", make_sequences_s=med(t["make_sequences"]))
    if TF is not None:
        d.update(loop_s=med(t["loop"]), speedup=med(t["loop"]) / med(t["make_sequences"]),
                 max_abs_diff=float((batched() - loop()).abs().max()),
                 loop_reference="torchvision.transforms.functional.rotate (bilinear), one call per frame")
    else:
        d.update(speedup=None, loop_reference="torchvision not installed")
    return d


def bench_memory(args, mode, log):
    "Section f: a short training run at the paper config in a fresh child process; its peak RSS (and CUDA peak)."
    log(f"f) peak memory of a {MODES[mode]['mem_steps']}-step training run (child process) ...")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_memory-child", "--device", args.device,
           "--threads", str(args.threads), "--optim", args.optim, "--mode", mode]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0: raise RuntimeError(f"memory child failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def memory_child(args, mode):
    "Runs in the child: build the paper model and train for a few steps; print peak RSS as JSON."
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    P = MODES[mode]
    def rss_now():
        try:
            import psutil
            return psutil.Process().memory_info().rss
        except ImportError:
            return None
    rss0 = rss_now()
    cfg, model = paper_model(device, mode)
    opt = make_optimizer(model.parameters(), args.optim)
    g = torch.Generator().manual_seed(2)
    images = torch.rand(P["batch"], 1, 28, 28, generator=g).to(device)
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats(device)
    for _ in range(P["mem_steps"]):
        x = make_sequences(images, "rotation", cfg.seq_len, generator=g)      # fresh sequences each step
        opt.zero_grad(set_to_none=True)
        model.loss(x).loss.backward()
        opt.step()
    synchronize(device)
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss               # KiB on Linux, bytes on macOS
    peak = ru if sys.platform == "darwin" else ru * 1024
    out = dict(steps=P["mem_steps"], batch_sequences=P["batch"], peak_rss_bytes=peak, peak_rss_gb=peak / 1e9,
               rss_after_import_bytes=rss0, method="resource.getrusage(RUSAGE_SELF).ru_maxrss of a fresh process "
               "that imports torch + tvae_nb, builds the paper model and trains; includes the interpreter and torch")
    if device.type == "cuda":
        out.update(cuda_max_memory_allocated_bytes=torch.cuda.max_memory_allocated(device))
    print(json.dumps(out))


# ------------------------------------------------------------------------------------------------ report
def check_targets(res) -> dict:
    out = {}
    for name, (sec, key, op, thr, desc) in TARGETS.items():
        v = res.get(sec, {}).get(key)
        ok = None if v is None else (v >= thr if op == ">=" else v <= thr if op == "<=" else v < thr)
        out[name] = dict(value=v, target=f"{op} {thr:g}", met=ok, description=desc)
    return out


def fmt_table(res) -> str:
    a, b, c, d, e, f = (res[k] for k in "abcdef")
    ms = lambda s: f"{s * 1e3:.2f} ms"
    rows = [
        ("a", f"training step ({a['config']['n_caps']}x{a['config']['cap_dim']} TVAE, {a['batch_sequences']} seq x "
              f"{a['seq_len']} frames, {res['meta']['optimizer']})",
         f"{ms(a['step_s'])}  = {a['sequences_per_s']:.1f} seq/s", ""),
        ("a", "  of which forward+backward / optimiser step", f"{ms(a['fwd_bwd_s'])} / {ms(a['optimizer_step_s'])}", ""),
        ("a", "  optimiser step: " + " / ".join(a["optimizer_step_s_by_optimizer"]),
         " / ".join(ms(t) for t in a["optimizer_step_s_by_optimizer"].values()), ""),
        ("b", "capsule_energy share of a step (timed in place)", f"{100 * b['share']:.1f} %", "< 5 %"),
        ("b", "  cross-checks: stand-in; isolated; profiler",
         f"{100 * b['share_standin']:.1f} %; {100 * b['share_isolated']:.1f} %; "
         + (f"{100 * b['share_profiler']:.1f} %" if b["share_profiler"] is not None else "n/a"), ""),
        ("c", "capsule_energy fwd+bwd: ours / conv / roll loop",
         " / ".join(ms(c["energy_fwd_bwd_s"][k]) for k in ("ours", "conv", "roll")), ""),
        ("c", "  speed-up vs ConvTranspose3d reference", f"{c['speedup_vs_conv']:.1f}x", ">= 30x"),
        ("c", "  speed-up vs naive roll loop", f"{c['speedup_vs_roll']:.1f}x", ">= 3x"),
        ("c", "step: ours / conv swapped in / roll swapped in",
         " / ".join(ms(c["step_s"][k]) for k in ("ours", "conv", "roll")), ""),
        ("c", "  step speed-up vs step with conv energy", f"{c['step_speedup_vs_conv']:.2f}x", ">= 2.5x"),
        ("c", "  conv as a module with trainable weight: energy / step",
         f"{ms(c['energy_fwd_bwd_s']['conv_trainable'])} / {ms(c['step_s']['conv_trainable'])}; speed-ups "
         f"{c['speedup_vs_conv_trainable']:.0f}x / {c['step_speedup_vs_conv_trainable']:.2f}x", ""),
        ("d", f"make_sequences vs rotate loop (batch {d['batch']}, S=18)",
         f"{ms(d['make_sequences_s'])} vs " + (ms(d["loop_s"]) if "loop_s" in d else "n/a"), ""),
        ("d", "  speed-up", f"{d['speedup']:.1f}x" if d.get("speedup") else "n/a", ">= 20x"),
        ("e", "step FLOPs (FlopCounterMode) / FLOP/s",
         f"{e['step_flops'] / 1e9:.2f} GFLOP / {e['step_flop_per_s'] / 1e9:.1f} GFLOP/s", ""),
        ("e", f"  {e['matmul_n']}^2 fp32 matmul FLOP/s", f"{e['matmul_flop_per_s'] / 1e9:.1f} GFLOP/s", ""),
        ("e", "  step FLOP/s / matmul FLOP/s (fwd+bwd only)",
         f"{e['fraction_of_matmul']:.2f} ({e['fwd_bwd_fraction_of_matmul']:.2f})", ">= 0.6"),
        ("e", "  estimated with " + " / ".join(e["fraction_of_matmul_by_optimizer"]),
         " / ".join(f"{v:.2f}" for v in e["fraction_of_matmul_by_optimizer"].values()), ""),
        ("f", f"peak RSS, {f['steps']}-step training run", f"{f['peak_rss_gb']:.2f} GB"
         + (f"; CUDA {f['cuda_max_memory_allocated_bytes'] / 1e9:.2f} GB" if "cuda_max_memory_allocated_bytes" in f else ""),
         "< 2 GB"),
    ]
    w1, w2, w3 = (max(len(r[i]) for r in rows) for i in (1, 2, 3))
    lines = [f"| {'':1} | {'measure':{w1}} | {'result':{w2}} | {'target':{w3}} |", f"|---|{'-' * (w1 + 2)}|{'-' * (w2 + 2)}|{'-' * (w3 + 2)}|"]
    lines += [f"| {s} | {m:{w1}} | {r:{w2}} | {t:{w3}} |" for s, m, r, t in rows]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    grp = ap.add_mutually_exclusive_group()
    grp.add_argument("--quick", action="store_true", help="fewer repeats (about 1-3 minutes on 2 CPU cores)")
    grp.add_argument("--smoke", action="store_true", help="tiny sizes and 1 repeat: checks that everything runs")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--optim", choices=tuple(OPTIMIZERS), default="library", help="optimiser of the step (default: library = tvae_nb.train.make_optimizer; "
                    "adam = unfused torch Adam; adam_fused = Adam(fused=True); sgd = SGD with momentum 0.9)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"), help="where to write results.json")
    ap.add_argument("--profile", action="store_true", help="also print the step's top ops from torch.profiler")
    ap.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_memory-child", dest="memory_child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    mode = args.mode or ("smoke" if args.smoke else "quick" if args.quick else "full")
    if args.memory_child: return memory_child(args, mode)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available(): ap.error("--device cuda but CUDA is not available")
    torch.set_num_threads(args.threads)
    t0 = time.time()
    log = lambda msg: print(f"[{time.time() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)
    load_before = os.getloadavg()
    log(f"mode={mode} device={device} threads={args.threads} load average (1, 5, 15 min) = {load_before}")

    a, b, c, e, prof = bench_step_and_energy(device, mode, args.optim, log)
    d = bench_sequences(device, mode, log)
    f = bench_memory(args, mode, log)
    from table1_job import section_h
    log("h) the quick Table-1 job: each row's step against its GEMMs, FLOPs, evaluation shares ...")
    h = section_h(reps={"smoke": 1, "quick": 15, "full": 30}[mode], log=log,
                  rows=("TVAE partial L",) if mode == "smoke" else None)
    load_after = os.getloadavg()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor()) \
        if Path("/proc/cpuinfo").exists() else platform.processor()
    res = dict(a=a, b=b, c=c, d=d, e=e, f=f, h=h)
    res["meta"] = dict(mode=mode, device=str(device), threads=args.threads, optimizer=args.optim,
                       load_avg_before=list(load_before), load_avg_after=list(load_after), cpu=cpu,
                       cpu_count=os.cpu_count(), torch=torch.__version__, tvae_nb=tvae_nb.__version__,
                       python=platform.python_version(), date=datetime.datetime.now().isoformat(timespec="seconds"),
                       wall_s=time.time() - t0,
                       command="python benchmarks/run.py " + " ".join(a_ for a_ in (argv if argv is not None else sys.argv[1:])),
                       timing="medians over repeats; compared variants timed round-robin in the same loop")
    if device.type == "cuda": res["meta"]["gpu"] = torch.cuda.get_device_name(device)
    res["targets"] = check_targets(res)
    res["profile_top_ops_per_step"] = prof["top_ops_per_step"]
    out = Path(args.out); out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():                                    # keep sections other scripts write (g: benchmarks/table1_walltime.py)
        res = {**{k: v for k, v in json.loads(out.read_text()).items() if k in OTHER_SECTIONS}, **res}
    out.write_text(json.dumps(res, indent=1))
    print(fmt_table(res))
    from table1_job import fmt as fmt_h
    print("\nh) tvae-nb table1 --budget quick, one thread per process:\n" + fmt_h(h))
    print(f"\nload average before/after: {tuple(round(x, 2) for x in load_before)} / "
          f"{tuple(round(x, 2) for x in load_after)}; {cpu}; {args.threads} threads; torch {torch.__version__}")
    met = [k for k, v in res["targets"].items() if v["met"]]
    missed = [k for k, v in res["targets"].items() if v["met"] is False]
    print(f"targets met: {', '.join(met) or '-'}; missed: {', '.join(missed) or '-'}")
    if args.profile:
        print("\ntop ops of a training step (torch.profiler, self CPU ms per step):")
        for r in prof["top_ops_per_step"]: print(f"  {r['self_cpu_ms']:8.2f}  {r['calls']:5d}  {r['name']}")
    print(f"wrote {out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
