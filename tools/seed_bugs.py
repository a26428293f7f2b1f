"""Seed known bugs into a scratch copy of the package, one at a time, and check that a test catches each.

Usage: python tools/seed_bugs.py [--only NAME ...] [--list]

For each mutation below, the package `tvae_nb/` is copied to a temporary folder, one line is changed (the exact
text must occur once), and the named test files run against that copy (`python -m pytest -x`, with the copy first
on `sys.path`). A mutation is *caught* when pytest fails. The repository is never modified. The script ends with
"caught X of Y" and exits non-zero when a mutation survives or a mutation's text is not found (the code moved: update
the table). Runtime: about a minute on one core.
"""
from __future__ import annotations
import argparse, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATHS = ["tests/test_tvae_maths.py"]
VAE = ["tests/test_vae.py"]
TOPO = ["tests/test_topography.py"]

# (name, module file, old text, new text, test files)
MUTATIONS = [
    # the four of issue 16
    ("log_weights drops log p(u)", "tvae.py",
     "+ gaussian_log_prob(z) + gaussian_log_prob(u)", "+ gaussian_log_prob(z)", MATHS),
    ("loss drops KL of u", "tvae.py",
     "(recon + kl_weight * (kl_z + kl_u)).mean()", "(recon + kl_weight * kl_z).mean()", MATHS),
    ("encode ignores the variance of q(u)", "tvae.py",
     "self.energy(mean_u.square() + logvar_u.exp())", "self.energy(mean_u.square())", MATHS),
    ("encode_static drops the factor L", "tvae.py",
     "v = topo.L * CapsuleTopography", "v = CapsuleTopography", MATHS),
    # others like them
    ("log_weights drops log q(u|x)", "tvae.py",
     "- gaussian_log_prob(z, mean_z, logvar_z) - gaussian_log_prob(u, mean_u, logvar_u))", "- gaussian_log_prob(z, mean_z, logvar_z))", MATHS),
    ("log_weights averages frames instead of summing", "tvae.py",
     "return lw.sum(-1)  ", "return lw.mean(-1)  ", MATHS),
    ("latent uses |u| instead of u²", "tvae.py",
     "self.energy(u.square())", "self.energy(u.abs())", MATHS),
    ("encode(sample=True) uses the mean of u", "tvae.py",
     "self.latent(reparameterize(mean_z, logvar_z), reparameterize(mean_u, logvar_u))", "self.latent(reparameterize(mean_z, logvar_z), mean_u)", MATHS),
    ("loss averages frames instead of summing", "tvae.py",
     "recon = -bernoulli_log_lik(out.logits, x).reshape(B, -1).sum(-1)",
     "recon = -bernoulli_log_lik(out.logits, x).reshape(B, -1).mean(-1)", MATHS),
    ("kl_weight scales only the KL of z", "tvae.py",
     "(recon + kl_weight * (kl_z + kl_u)).mean()", "(recon + kl_weight * kl_z + kl_u).mean()", MATHS),
    ("make_topography ignores shift", "tvae.py",
     "CapsuleTopography(cfg.n_caps, cfg.cap_dim, cfg.L, cfg.K, cfg.shift)",
     "CapsuleTopography(cfg.n_caps, cfg.cap_dim, cfg.L, cfg.K, True)", MATHS),
    ("student_t_latent adds mu", "topography.py",
     "return (z - mu) / torch.sqrt(v.clamp_min(0) + eps)", "return (z + mu) / torch.sqrt(v.clamp_min(0) + eps)",
     MATHS + TOPO),
    ("student_t_latent puts eps outside the root", "topography.py",
     "return (z - mu) / torch.sqrt(v.clamp_min(0) + eps)", "return (z - mu) / (torch.sqrt(v.clamp_min(0)) + eps)",
     MATHS + TOPO),
    ("capsule_energy ignores shift", "topography.py",
     "return _window_sum(u2, L, K, int(bool(shift)))", "return _window_sum(u2, L, K, 0)", MATHS + TOPO),
    ("torus topography uses a 1 x 1 window", "topography.py",
     "return torus_energy(u2, self.K)", "return torus_energy(u2, 1)", MATHS + TOPO),
    ("gaussian_kl drops the -1", "vae.py",
     "0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)", "0.5 * (mu.pow(2) + logvar.exp() - logvar)", MATHS + VAE),
    ("gaussian_log_prob drops log 2 pi", "vae.py",
     "-0.5 * (math.log(2 * math.pi) + logvar", "-0.5 * (logvar", MATHS + VAE),
    ("reparameterize uses the variance as the scale", "vae.py",
     "return mu + (0.5 * logvar).exp() * torch.randn_like(mu)", "return mu + logvar.exp() * torch.randn_like(mu)",
     MATHS + VAE),
    ("bernoulli_log_lik flips its sign", "vae.py",
     "ll = -F.binary_cross_entropy_with_logits", "ll = F.binary_cross_entropy_with_logits", MATHS + VAE),
    ("log_mean_exp drops - log K", "vae.py",
     "return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])", "return torch.logsumexp(log_w, dim=dim)",
     VAE),
    ("VAE.log_weights drops log q(z|x)", "vae.py",
     "lw = ll + gaussian_log_prob(z) - gaussian_log_prob(z, mu, logvar)", "lw = ll + gaussian_log_prob(z)", VAE),
]


def run_one(name, module, old, new, tests, tmp: Path) -> tuple[str, float]:
    pkg = tmp / "tvae_nb"
    if pkg.exists(): shutil.rmtree(pkg)
    shutil.copytree(ROOT / "tvae_nb", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    f = pkg / module
    src = f.read_text()
    if src.count(old) != 1: return f"NOT FOUND ({src.count(old)} matches)", 0.0
    f.write_text(src.replace(old, new))
    env = {**os.environ, "PYTHONPATH": str(tmp), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                        *[str(ROOT / t) for t in tests]], cwd=tmp, env=env, capture_output=True, text=True)
    secs = time.time() - t0
    probe = subprocess.run([sys.executable, "-c", "import tvae_nb, sys; print(tvae_nb.__file__)"], cwd=tmp, env=env,
                           capture_output=True, text=True).stdout.strip()
    if not probe.startswith(str(tmp)): return f"ERROR: tests imported {probe}, not the mutated copy", secs
    return ("caught" if r.returncode == 1 else ("survived" if r.returncode == 0 else f"ERROR rc={r.returncode}")), secs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", help="run only mutations whose name contains one of these")
    p.add_argument("--list", action="store_true", help="list the mutations and exit")
    a = p.parse_args(argv)
    muts = [m for m in MUTATIONS if not a.only or any(s in m[0] for s in a.only)]
    if a.list:
        for m in muts: print(f"{m[1]:>14}: {m[0]}")
        return 0
    caught, bad = 0, 0
    with tempfile.TemporaryDirectory() as d:
        for name, module, old, new, tests in muts:
            res, secs = run_one(name, module, old, new, tests, Path(d))
            caught += res == "caught"; bad += res.startswith(("NOT", "ERROR"))
            print(f"{res:>9}  {secs:5.1f} s  {module}: {name}", flush=True)
    print(f"caught {caught} of {len(muts)} seeded bugs" + (f" ({bad} could not be applied or run)" if bad else ""))
    return 0 if caught == len(muts) else 1


if __name__ == "__main__": sys.exit(main())
