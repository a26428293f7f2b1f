"""An attack suite on the run folder, the checkpoint, the command line and the library's boundary (issues 26 and 27).

Every case ends in one of two ways: a clear one-line error that names the argument or file, the value and what is
expected, or the right result. None may end in a traceback, a silent wrong result or a hang (each in-process case runs
under a 60 s alarm). Cases are grouped by category; `python -m pytest tests/test_attacks.py -q` prints the counts.
All of them together take well under a minute (they train only runs of a few steps of a tiny model).
"""
import contextlib, errno, io, json, os, shutil, signal, subprocess, sys, threading, time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tvae_nb.checkpoint import CHECKPOINT, LOCK, RunLock, _envelope, check_regular, load_checkpoint, open_nofollow, save_checkpoint
from tvae_nb.cli import main
from tvae_nb.runner import RunLimit, run_experiment

from conftest import tiny_experiment

torch.set_num_threads(1)
POSIX = hasattr(os, "mkfifo") and sys.platform != "win32"
CASES: dict[str, int] = {}            # category -> number of cases (printed by test_zz_counts)


def category(name: str, n: int = 1):
    "Count `n` cases under `name`."
    CASES[name] = CASES.get(name, 0) + n


@pytest.fixture(autouse=True)
def _no_hang():
    "Every in-process case is a failure, not a hang, after 60 s."
    if threading.current_thread() is not threading.main_thread(): yield; return
    def boom(*_): raise TimeoutError("attack case hung for 60 s")
    old = signal.signal(signal.SIGALRM, boom); signal.alarm(60)
    try: yield
    finally: signal.alarm(0); signal.signal(signal.SIGALRM, old)


def tiny(steps=4, every=2, **kw):
    return tiny_experiment(steps=steps, every=every, n_caps=2, cap_dim=4, seq_len=4, L=3, hidden=(16, 16), n_eval=4,
                           **{"kl_warmup": 0, **kw})


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    "A finished tiny run: its config and folder (copy it before changing anything)."
    cfg = tiny()
    out = tmp_path_factory.mktemp("atk") / "run"
    run_experiment(cfg, out, progress=False)
    return cfg, out


def one_line_error(excinfo, *needles):
    text = str(excinfo.value)
    assert "\n" not in text, text
    for n in needles: assert n in text, (n, text)
    return text


def cli(argv, env=None):
    "Exit code, stdout and stderr of `main(argv)` in this process."
    out, err = io.StringIO(), io.StringIO()
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try: rc = main(argv)
            except SystemExit as e: rc = e.code
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
    return rc, out.getvalue(), err.getvalue()


# ==================================================================== security: forged checkpoints, links, FIFOs, names
def forge(path, edit, envelope=None):
    "Rewrite a checkpoint with `edit` applied and a valid sha256 (what a careful forger does)."
    d = load_checkpoint(path); edit(d)
    env = _envelope(d)
    if envelope: envelope(env)
    torch.save(env, path)


def _set_history_len(d, n):
    h = d["history"]; h["steps"] = torch.arange(n)
    h["values"] = {k: torch.zeros(n, dtype=torch.float64) for k in h["values"]}


FORGERIES = [
    ("envelope format is a tensor", None, lambda e: e.update(format=torch.tensor(2)), "its format is a Tensor"),
    ("envelope format is a string", None, lambda e: e.update(format="2"), "its format is a str"),
    ("inner config is not JSON", lambda d: d.update(config="{not json"), None, "stored config is not JSON"),
    ("inner config without train.steps", lambda d: d.update(config=json.dumps({"name": "x"})), None, "no integer train.steps"),
    ("all weights NaN", lambda d: [v.fill_(float("nan")) for v in d["model"].values() if v.is_floating_point()], None,
     "holds NaN or infinite weights"),
    ("one weight infinite", lambda d: next(v for v in d["model"].values() if v.is_floating_point()).view(-1).__setitem__(0, float("inf")),
     None, "holds NaN or infinite weights"),
    ("a 10^7-step history for a 4-step run", lambda d: _set_history_len(d, 10**7), None, "one entry per step done (4)"),
    ("step past the run's own steps", lambda d: d.update(step=10**7), None, "is past the run's own train.steps=4"),
    ("step negative", lambda d: d.update(step=-1), None, "step=-1, expected an integer >= 0"),
    ("step a bool", lambda d: d.update(step=True), None, "step=True, expected an integer"),
    ("step a float", lambda d: d.update(step=4.0), None, "step=4.0, expected an integer"),
    ("world_size 0", lambda d: d.update(world_size=0), None, "world_size=0, expected an integer >= 1"),
    ("experiment not a string", lambda d: d.update(experiment=3), None, "experiment is a int, expected a str"),
    ("model not a dict", lambda d: d.update(model=[1, 2]), None, "model is a list, expected a dict"),
    ("a weight that is a string", lambda d: d["model"].update({next(iter(d["model"])): "x"}), None, "is a str, expected a tensor"),
    ("history values of the wrong length", lambda d: d["history"]["values"].update(loss=torch.zeros(3)), None,
     "values must be tensors of 4 entries"),
    ("history evals not JSON", lambda d: d["history"].update(evals="[{"), None, "evaluations must be a JSON list"),
    ("history evals a dict", lambda d: d["history"].update(evals=json.dumps({"a": 1})), None, "evaluations must be a JSON list"),
    ("history seconds NaN", lambda d: d["history"].update(seconds=float("nan")), None, "seconds=nan, expected a finite number"),
    ("history missing fields", lambda d: d["history"].pop("evals"), None, "its history misses fields"),
]


@pytest.mark.parametrize("case,edit,envelope,msg", FORGERIES, ids=[f[0] for f in FORGERIES])
def test_security_forged_checkpoint(finished, tmp_path, case, edit, envelope, msg):
    category("security: forged checkpoints, traversal, symlinks, FIFOs")
    cfg, out = finished
    dst = tmp_path / "r"; shutil.copytree(out, dst)
    forge(dst / CHECKPOINT, edit or (lambda d: None), envelope)
    before = (dst / CHECKPOINT).read_bytes()
    with pytest.raises(ValueError) as e: run_experiment(cfg, dst, resume=True, progress=False)
    one_line_error(e, str(dst / CHECKPOINT), msg)
    assert (dst / CHECKPOINT).read_bytes() == before                       # never resumed from, never overwritten


def _symlink_to(tmp_path, name, target_exists=True):
    out = tmp_path / "out"; out.mkdir()
    target = tmp_path / "outside.txt"
    if target_exists: target.write_text("precious")
    (out / name).symlink_to(target)
    return out, target


LINKS = [(n, exists) for n in ("metrics.jsonl", "config.json", CHECKPOINT, "loss.png", LOCK) for exists in (True, False)]


@pytest.mark.skipif(not POSIX, reason="symlinks and FIFOs: POSIX")
@pytest.mark.parametrize("name,exists", LINKS, ids=[f"{n} -> {'file' if e else 'nothing'}" for n, e in LINKS])
def test_security_a_symlink_in_out_is_refused(tmp_path, name, exists):
    category("security: forged checkpoints, traversal, symlinks, FIFOs")
    out, target = _symlink_to(tmp_path, name, exists)
    with pytest.raises(ValueError) as e: run_experiment(tiny(), out, progress=False)
    one_line_error(e, str(out / name), "is a symbolic link, not a regular file")
    assert (target.read_text() == "precious") if exists else not target.exists()     # nothing written through it


FIFOS = ["metrics.jsonl", "config.json", CHECKPOINT, LOCK]


@pytest.mark.skipif(not POSIX, reason="FIFOs: POSIX")
@pytest.mark.parametrize("name", FIFOS)
def test_security_a_fifo_in_out_is_refused_without_blocking(tmp_path, name):
    category("security: forged checkpoints, traversal, symlinks, FIFOs")
    out = tmp_path / "out"; out.mkdir(); os.mkfifo(out / name)
    t0 = time.time()
    with pytest.raises(ValueError) as e: run_experiment(tiny(), out, progress=False)
    one_line_error(e, str(out / name), "is a FIFO (named pipe), not a regular file")
    assert time.time() - t0 < 20


@pytest.mark.skipif(not POSIX, reason="FIFOs: POSIX")
def test_security_open_nofollow_never_blocks_or_follows(tmp_path):
    category("security: forged checkpoints, traversal, symlinks, FIFOs", 3)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match="is a FIFO"): open_nofollow(tmp_path / "fifo")
    (tmp_path / "t").write_text("keep"); (tmp_path / "link").symlink_to(tmp_path / "t")
    with pytest.raises(ValueError, match="is a symbolic link"): open_nofollow(tmp_path / "link", "a")
    assert (tmp_path / "t").read_text() == "keep"
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match="is a folder"): check_regular(tmp_path / "d")


def test_security_a_folder_where_a_run_file_goes_is_refused(tmp_path):
    category("security: forged checkpoints, traversal, symlinks, FIFOs")
    out = tmp_path / "out"; (out / "loss.png").mkdir(parents=True)
    with pytest.raises(ValueError) as e: run_experiment(tiny(), out, progress=False)
    one_line_error(e, "loss.png", "is a folder, not a regular file")


@pytest.mark.parametrize("name", ["../../x", "a/../../b", "..", "/etc/x", "x\x00y", "ok/" + "x" * 10, "....", "~root"])
def test_security_experiment_names_cannot_leave_their_folder(name):
    category("security: forged checkpoints, traversal, symlinks, FIFOs")
    from tvae_nb.recipes import ExperimentConfig
    d = tiny().to_dict()
    with pytest.raises(ValueError) as e: ExperimentConfig.from_dict({**d, "name": name})
    one_line_error(e, "ExperimentConfig.name=")


def test_security_a_checkpoint_of_another_experiment_without_config_json_is_not_overwritten(finished, tmp_path):
    category("security: forged checkpoints, traversal, symlinks, FIFOs")
    cfg, out = finished
    dst = tmp_path / "r"; shutil.copytree(out, dst); (dst / "config.json").unlink()
    before = (dst / CHECKPOINT).read_bytes()
    other = replace(cfg, name="table1-vae-fb-other")
    with pytest.raises(ValueError) as e: run_experiment(other, dst, progress=False)
    one_line_error(e, f"holds a checkpoint of experiment {cfg.name!r}, not 'table1-vae-fb-other'")
    assert (dst / CHECKPOINT).read_bytes() == before


FOREIGN = [("metrics.jsonl alone", ["metrics.jsonl"], "but no config.json"),
           ("loss.png alone", ["loss.png"], "but no config.json"),
           ("notes.txt", ["notes.txt"], "holds files that are not a tvae-nb run's (notes.txt)"),
           ("a sub-folder", ["sub/"], "holds files that are not a tvae-nb run's (sub)")]


@pytest.mark.parametrize("case,files,msg", FOREIGN, ids=[f[0] for f in FOREIGN])
def test_security_files_of_no_run_are_not_overwritten(tmp_path, case, files, msg):
    category("security: forged checkpoints, traversal, symlinks, FIFOs")
    out = tmp_path / "out"; out.mkdir()
    for f in files:
        if f.endswith("/"): (out / f).mkdir()
        else: (out / f).write_text("mine")
    with pytest.raises(ValueError) as e: run_experiment(tiny(), out, progress=False)
    one_line_error(e, msg, "--overwrite")
    for f in files:
        if not f.endswith("/"): assert (out / f).read_text() == "mine"


@pytest.mark.skipif(not POSIX, reason="symlinks: POSIX")
@pytest.mark.parametrize("name", ["table1.json", "traversal_TVAE_partial_L.png"])
def test_security_a_symlink_among_the_tables_files_is_refused(tmp_path, name):
    category("security: forged checkpoints, traversal, symlinks, FIFOs")
    from tvae_nb.table1 import table1
    t = tmp_path / "t"; t.mkdir(); target = tmp_path / "outside"; target.write_text("precious")
    (t / name).symlink_to(target)
    with pytest.raises(ValueError) as e: table1("fast", out=t, verbose=False, progress=False, jobs=1)
    one_line_error(e, str(t / name), "is a symbolic link")
    assert target.read_text() == "precious" and sorted(p.name for p in t.iterdir()) == [name]


# ======================================================== faults: signals, pipes, full disk, concurrent writers
def test_faults_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    category("faults: signals, pipes, full disk, concurrent writers")
    out = tmp_path / "out"
    with RunLock(out):
        with pytest.raises(ValueError) as e: run_experiment(tiny(), out, progress=False)
        one_line_error(e, f"is in use by another tvae-nb process (pid {os.getpid()}")
        assert not (out / "config.json").exists()
    assert not (out / LOCK).exists()


def test_faults_a_second_table_on_one_folder_is_refused(tmp_path):
    category("faults: signals, pipes, full disk, concurrent writers")
    from tvae_nb.table1 import table1
    with RunLock(tmp_path / "t"):
        with pytest.raises(ValueError) as e: table1("fast", out=tmp_path / "t", verbose=False, progress=False, jobs=1)
        one_line_error(e, "is in use by another tvae-nb process")
    assert [p.name for p in (tmp_path / "t").iterdir()] == []               # nothing trained


def test_faults_a_lock_left_by_a_dead_process_does_not_block(tmp_path):
    category("faults: signals, pipes, full disk, concurrent writers")
    out = tmp_path / "out"; out.mkdir(); (out / LOCK).write_text("999999\n")    # a SIGKILLed run's lock file
    res = run_experiment(tiny(steps=2), out, progress=False)
    assert res.finished and not (out / LOCK).exists()


def test_faults_concurrent_locks_from_threads_admit_one_writer(tmp_path):
    category("faults: signals, pipes, full disk, concurrent writers")
    out, got, barrier = tmp_path / "out", [], threading.Barrier(8)
    def take():
        barrier.wait()
        try:
            with RunLock(out): got.append("lock"); time.sleep(0.3)
        except ValueError as e: got.append(str(e))
    ts = [threading.Thread(target=take) for _ in range(8)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert got.count("lock") >= 1 and all(g == "lock" or "is in use" in g for g in got)
    assert got.count("lock") + sum("is in use" in g for g in got) == 8


def test_faults_a_live_writers_temporary_file_is_kept(finished, tmp_path):
    category("faults: signals, pipes, full disk, concurrent writers")
    cfg, out = finished
    ck = load_checkpoint(out / CHECKPOINT)
    live = tmp_path / f".{CHECKPOINT}.tmp-{os.getppid()}"; live.write_bytes(b"mid-save")     # a live process's file
    from tvae_nb.train import History
    m = torch.nn.Linear(2, 2)
    save_checkpoint(tmp_path / CHECKPOINT, cfg, m, torch.optim.SGD(m.parameters(), lr=0.1), History(), 0,
                    [{"rng": ck["ranks"][0]["rng"], "sampler": {}}])
    assert live.exists()


def _enospc(*a, **k): raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["fsync", "write"])
def test_faults_a_full_disk_is_said_in_words_and_leaves_no_partial_file(finished, tmp_path, monkeypatch, where):
    category("faults: signals, pipes, full disk, concurrent writers")
    cfg, out = finished
    dst = tmp_path / "r"; shutil.copytree(out, dst)
    before = (dst / CHECKPOINT).read_bytes()
    ck = load_checkpoint(dst / CHECKPOINT)
    import tvae_nb.checkpoint as C
    if where == "fsync": monkeypatch.setattr(C.os, "fsync", _enospc)
    else:
        real = C.open_nofollow
        class Full(io.RawIOBase):
            def __init__(self, f): self.f = f
            def write(self, b): _enospc()
            def __enter__(self): return self
            def __exit__(self, *a): self.f.close()
            def fileno(self): return self.f.fileno()
        monkeypatch.setattr(C, "open_nofollow", lambda p, mode="w": Full(real(p, mode)))
    from tvae_nb.train import History
    m = torch.nn.Linear(2, 2)
    with pytest.raises(OSError) as e:
        save_checkpoint(dst / CHECKPOINT, cfg, m, torch.optim.SGD(m.parameters(), lr=0.1), History(), 0,
                        [{"rng": ck["ranks"][0]["rng"], "sampler": {}}])
    one_line_error(e, "no space left on the disk of", "needed about", "MB for checkpoint.pt")
    assert (dst / CHECKPOINT).read_bytes() == before
    assert not [p.name for p in dst.iterdir() if ".tmp-" in p.name]


def test_faults_a_full_disk_in_the_cli_is_one_line(tmp_path, monkeypatch):
    category("faults: signals, pipes, full disk, concurrent writers")
    import tvae_nb.checkpoint as C
    monkeypatch.setattr(C.os, "fsync", _enospc)
    rc, out, err = cli(["run", "table1-vae", "--budget", "fast", "--steps", "2", "--out", str(tmp_path / "r"), "--no-progress"])
    assert rc == 1 and err.count("\n") == 1 and "no space left on the disk of" in err, err


def test_faults_a_closed_stdout_goes_quiet_instead_of_raising():
    category("faults: signals, pipes, full disk, concurrent writers")
    from tvae_nb.cli import _PipeSafe
    r, w = os.pipe(); os.close(r)
    f = os.fdopen(w, "w", buffering=1)
    safe = _PipeSafe(f)
    assert safe.write("line\n") == 5 and safe.closed_pipe
    safe.flush(); safe.write("more\n")                                    # no BrokenPipeError either
    with contextlib.suppress(OSError): f.close()


def _env():
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    env.pop("TVAE_NB_FAST", None)
    return env


@pytest.mark.skipif(not POSIX, reason="pipes and signals: POSIX")
def test_faults_run_piped_into_head_trains_on_and_checkpoints(tmp_path):
    category("faults: signals, pipes, full disk, concurrent writers")
    out = tmp_path / "r"
    p = subprocess.Popen([sys.executable, "-m", "tvae_nb.cli", "run", "table1-vae", "--budget", "fast", "--steps", "30",
                          "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    p.stdout.readline(); p.stdout.close()                                 # `| head -1`
    err = p.stderr.read().decode(); p.wait(timeout=120)
    assert p.returncode == 0, err
    assert "BrokenPipe" not in err and "Traceback" not in err, err
    assert load_checkpoint(out / CHECKPOINT)["step"] == 30


@pytest.mark.skipif(not POSIX, reason="pipes: POSIX")
def test_faults_table_workers_survive_a_closed_stdout():
    "`tvae-nb table1 --jobs 2 | head`: each worker process prints progress into the closed pipe and must train on."
    category("faults: signals, pipes, full disk, concurrent writers")
    code = ("import functools, sys\nfrom tvae_nb.cli import _PipeSafe\nsys.stdout = _PipeSafe(sys.stdout)\n"
            "from tvae_nb.table1 import run_jobs\n"
            "r = run_jobs(functools.partial(print, flush=True), [('progress line',)] * 6, jobs=2)\n"
            "sys.stderr.write(f'RESULT {r}\\n')")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), text=True)
    p.stdout.close()                                                      # the reader is gone before anything is printed
    err = p.communicate(timeout=120)[1]
    assert p.returncode == 0 and "RESULT [None, None, None, None, None, None]" in err and "Traceback" not in err, err


@pytest.mark.skipif(not POSIX, reason="signals: POSIX")
def test_faults_sigterm_to_run_checkpoints_and_says_how_to_resume(tmp_path):
    category("faults: signals, pipes, full disk, concurrent writers")
    out = tmp_path / "r"
    p = subprocess.Popen([sys.executable, "-m", "tvae_nb.cli", "run", "table1-vae", "--budget", "fast", "--steps",
                          "100000", "--out", str(out), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=_env(), text=True)
    for line in p.stdout:                                                 # training is under way once the header is out
        if "steps 0 -> " in line: break
    time.sleep(1.0); p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "stopped by SIGTERM" in err and "--resume" in err and "Traceback" not in err, err
    assert 0 <= load_checkpoint(out / CHECKPOINT)["step"] < 100000


# ================================================================================ command line and environment
CLI_CASES = [
    ("--resume with --overwrite", ["run", "table1-vae", "--budget", "fast", "--resume", "--overwrite", "--out", "{t}/r"], {},
     2, "--resume and --overwrite contradict each other"),
    ("--out ''", ["run", "table1-vae", "--budget", "fast", "--out", ""], {}, 2, "--out '' is empty"),
    ("table1 --out ''", ["table1", "--budget", "fast", "--out", ""], {}, 2, "--out '' is empty"),
    ("--device cpu:1", ["run", "table1-vae", "--budget", "fast", "--device", "cpu:1", "--out", "{t}/r"], {}, 2,
     "device='cpu:1' is not available"),
    ("--device gpu", ["run", "table1-vae", "--budget", "fast", "--device", "gpu", "--out", "{t}/r"], {}, 2, "device='gpu'"),
    ("TVAE_NB_FAST=yes-please", ["run", "table1-vae", "--out", "{t}/r"], {"TVAE_NB_FAST": "yes-please"}, 2,
     "TVAE_NB_FAST='yes-please' is not understood"),
    ("TVAE_NB_FAST=2", ["table1", "--out", "{t}/t"], {"TVAE_NB_FAST": "2"}, 2, "TVAE_NB_FAST='2' is not understood"),
    ("WORLD_SIZE=2 without torchrun", ["run", "table1-vae", "--budget", "fast", "--out", "{t}/r"],
     {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "", "MASTER_PORT": ""}, 2,
     "WORLD_SIZE=2 asks for 2 processes, but MASTER_ADDR and MASTER_PORT are not set"),
    ("RANK=3 of WORLD_SIZE=2", ["run", "table1-vae", "--budget", "fast", "--out", "{t}/r"],
     {"WORLD_SIZE": "2", "RANK": "3"}, 2, "RANK=3"),
    ("data --n 10**8", ["data", "--n", str(10**8), "--out", "{t}/d", "--source", "embedded"], {}, 2,
     "--n must be an integer in [1, 100], got --n=100000000"),
    ("data --seq-len 10**7", ["data", "--seq-len", str(10**7), "--out", "{t}/d", "--source", "embedded"], {}, 2,
     "--seq-len must be an integer in [2, 200], got --seq-len=10000000"),
    ("--out under /proc", ["run", "table1-vae", "--budget", "fast", "--out", "/proc/tvae-nb-x"], {}, None, "/proc/tvae-nb-x"),
    ("--out with a 300-character name", ["run", "table1-vae", "--budget", "fast", "--out", "{t}/" + "x" * 300], {}, None,
     "x" * 40),
    ("--out a symlink loop", ["run", "table1-vae", "--budget", "fast", "--out", "{t}/loop/x"], {}, None, "loop"),
    ("show an unknown experiment", ["show", "table9-nothing", "--budget", "fast"], {}, 2, "table9-nothing"),
    ("table1 --jobs 0", ["table1", "--budget", "fast", "--jobs", "0"], {}, 2, "argument --jobs: expected an integer >= 1"),
    ("run --max-seconds 0", ["run", "table1-vae", "--max-seconds", "0"], {}, 2, "argument --max-seconds: expected a finite number > 0"),
    ("run --steps -5", ["run", "table1-vae", "--steps", "-5"], {}, 2, "argument --steps: expected an integer in [0, 1000000000]"),
]


@pytest.mark.parametrize("case,argv,env,code,msg", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_environment(tmp_path, case, argv, env, code, msg):
    category("command line and environment")
    if "loop" in case: (tmp_path / "loop").symlink_to(tmp_path / "loop")
    if "/proc" in case and not Path("/proc").is_dir(): pytest.skip("no /proc")
    argv = [a.replace("{t}", str(tmp_path)) for a in argv]
    rc, out, err = cli(argv, env)
    assert rc in ((1, 2) if code is None else (code,)), (rc, err)
    line = [l for l in err.splitlines() if l.strip()][-1] if err.strip() else ""
    assert msg in err and (err.count("\n") == 1 or "usage:" in err) and "Traceback" not in err, err


def test_cli_help_does_not_import_torch():
    category("command line and environment")
    code = ("import sys\nfrom tvae_nb.cli import main\n"
            "for a in (['--help'], ['run', '--help'], ['table1', '--help'], ['data', '--help'], ['show', '--help'], ['list', '--help']):\n"
            "    try: main(a)\n    except SystemExit: pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 0 and "TORCH False" in r.stdout, r.stdout[-500:] + r.stderr[-500:]
    assert r.stdout.count("examples:") == 6                               # an example per command, and the top level


def test_cli_every_option_has_help_text():
    category("command line and environment")
    from tvae_nb.cli import build_parser
    import argparse
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {a.option_strings or a.dest}" for name, sp in sub.choices.items() for a in sp._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not missing, missing


def test_cli_constants_equal_the_librarys():
    category("command line and environment")
    import tvae_nb.cli as C
    from tvae_nb.core import MAX_SEED, MAX_STEPS
    from tvae_nb.recipes import BUDGETS, TABLE1_TRANSFORMS
    assert (C._BUDGETS, C._TABLE1_TRANSFORMS, C._MAX_SEED, C._MAX_STEPS) == (BUDGETS, TABLE1_TRANSFORMS, MAX_SEED, MAX_STEPS)


def test_cli_bare_command_prints_help_and_exits_2():
    category("command line and environment")
    rc, out, err = cli([])
    assert rc == 2 and "usage: tvae-nb" in err


def test_cli_resume_with_more_steps_extends_a_finished_run(tmp_path):
    category("command line and environment", 3)
    out = str(tmp_path / "r")
    base = ["run", "table1-vae", "--budget", "fast", "--out", out, "--no-progress"]
    assert cli(base + ["--steps", "4"])[0] == 0
    rc, o, err = cli(base + ["--steps", "6", "--resume"])
    assert rc == 0 and "steps 4 -> 6 of 6" in o, err
    assert load_checkpoint(Path(out) / CHECKPOINT)["step"] == 6
    assert json.loads((Path(out) / "config.json").read_text())["experiment"]["train"]["steps"] == 6
    rc, o, err = cli(base + ["--steps", "3", "--resume"])                 # fewer steps than done: refused
    assert rc == 2 and "--steps 3 is below the 6 steps" in err and err.count("\n") == 1, err
    rc, o, err = cli(base + ["--steps", "8"])                             # a larger count without --resume: refused
    assert rc == 2 and "train.steps: 6 != 8" in err, err


# ============================================================================ library inputs (the run and table code)
def _tiny_tvae(model="tvae"):
    "A small capsule model of 3 frames (a VAE with model='vae')."
    from tvae_nb.tvae import TVAEConfig, make_model
    return make_model(TVAEConfig(model=model, topography="capsules", n_caps=2, cap_dim=3, seq_len=3, L=1, K=3, hidden=(8, 8)), seed=0)


LIB = [
    ("run_experiment cfg a dict", lambda t: run_experiment({"name": "x"}, t / "r"), "cfg must be an ExperimentConfig, got dict"),
    ("run_experiment limit steps=-1", lambda t: run_experiment(tiny(), t / "r", limit=RunLimit(steps=-1)), "limit.steps must be an integer >= 0"),
    ("run_experiment limit seconds=nan", lambda t: run_experiment(tiny(), t / "r", limit=RunLimit(seconds=float("nan"))), "limit.seconds must be"),
    ("run_experiment limit=5", lambda t: run_experiment(tiny(), t / "r", limit=5), "limit must be a RunLimit(steps, seconds), got 5"),
    ("run_experiment resume and overwrite", lambda t: run_experiment(tiny(), t / "r", resume=True, overwrite=True),
     "--resume and --overwrite contradict each other"),
    ("run_experiment resume with no checkpoint", lambda t: run_experiment(tiny(), t / "r", resume=True), "--resume: no checkpoint at"),
    ("load_checkpoint of a missing file", lambda t: load_checkpoint(t / "nothing.pt"), "does not exist"),
    ("load_checkpoint of a text file", lambda t: (t.joinpath("x.pt").write_text("hello"), load_checkpoint(t / "x.pt")),
     "is corrupted or not a tvae-nb checkpoint"),
    ("load_checkpoint of a pickle payload", lambda t: (torch.save({"format": 2, "sha256": "0", "payload": [1]}, t / "p.pt"),
                                                       load_checkpoint(t / "p.pt")), "malformed payload"),
    ("get_device('cpu:1')", lambda t: __import__("tvae_nb.core").core.get_device("cpu:1"), "device='cpu:1' is not available"),
    ("get_device(3)", lambda t: __import__("tvae_nb.core").core.get_device(3), "device must be a string"),
    ("table1 budget 'huge'", lambda t: __import__("tvae_nb.table1").table1.table1("huge", out=t / "t"), "budget"),
    ("table1 jobs=0", lambda t: __import__("tvae_nb.table1").table1.table1("fast", out=t / "t", jobs=0), "jobs must be an integer >= 1"),
    ("table1 transform 'shear'", lambda t: __import__("tvae_nb.table1").table1.table1_experiments("fast", transform="shear"), "shear"),
    ("table1 experiments of one row", lambda t: __import__("tvae_nb.table1").table1.table1(
        {"VAE": __import__("tvae_nb.recipes").recipes.make_experiment("table1-vae", "fast")}, out=t / "t"), "experiments must be"),
    ("table1 rows of two seeds", lambda t: __import__("tvae_nb.table1").table1.table1(
        {**__import__("tvae_nb.table1").table1.table1_experiments("fast"),
         "VAE": __import__("tvae_nb.recipes").recipes.make_experiment("table1-vae", "fast", seed=1)}, out=t / "t"), "a table's rows share them"),
    ("table1_models of an empty folder", lambda t: __import__("tvae_nb.table1").table1.table1_models(t), "holds no finished table"),
    ("curve_ns(0)", lambda t: __import__("tvae_nb.table1").table1.curve_ns(0), "n must be an integer >= 1"),
    ("run_jobs jobs=-1", lambda t: __import__("tvae_nb.table1").table1.run_jobs(print, [], jobs=-1), "jobs must be an integer >= 1"),
    ("TVAE.loss on float64 input", lambda t: _tiny_tvae().loss(torch.rand(2, 3, 1, 28, 28, dtype=torch.float64)),
     "x must have the model's dtype torch.float32"),
    ("TVAE.loss on a numpy array", lambda t: _tiny_tvae().loss(torch.rand(2, 3, 1, 28, 28).numpy()), "x must be a torch.Tensor"),
    ("TVAE.loss on an empty batch", lambda t: _tiny_tvae().loss(torch.rand(0, 3, 1, 28, 28)), "at least one image or sequence"),
    ("TVAE.loss kl_weight=nan", lambda t: _tiny_tvae().loss(torch.rand(2, 3, 1, 28, 28), kl_weight=float("nan")),
     "kl_weight must be a finite number >= 0"),
    ("SeqVAE.loss kl_weight=-1", lambda t: _tiny_tvae("vae").loss(torch.rand(2, 3, 1, 28, 28), kl_weight=-1.0),
     "kl_weight must be a finite number >= 0"),
    ("SeqVAE.encode on float64 input", lambda t: _tiny_tvae("vae").encode(torch.rand(2, 3, 1, 28, 28, dtype=torch.float64)),
     "model's dtype"),
    ("make_optimizer lr=inf", lambda t: __import__("tvae_nb.train").train.make_optimizer([torch.nn.Parameter(torch.zeros(1))], lr=float("inf")),
     "lr must be a finite positive number"),
    ("make_optimizer momentum=-1", lambda t: __import__("tvae_nb.train").train.make_optimizer([torch.nn.Parameter(torch.zeros(1))], "sgd",
                                                                                              momentum=-1), "momentum must be"),
    ("TVAEConfig mu_init=1e300", lambda t: __import__("tvae_nb.tvae").tvae.TVAEConfig(mu_init=1e300), "|mu_init| <= 1e6"),
    ("student_t_cdf nu=1e8", lambda t: __import__("tvae_nb.topography").topography.student_t_cdf(0.5, 10**8), "nu must be an integer in [1, 10000]"),
    ("equivariance_error on an empty batch", lambda t: __import__("tvae_nb.metrics").metrics.equivariance_error(torch.rand(0, 4, 2, 3)),
     "t is empty"),
    ("roll_traversal on one-frame sequences", lambda t: __import__("tvae_nb.metrics").metrics.roll_traversal(_tiny_tvae(),
                                                                                                          torch.rand(2, 1, 1, 28, 28)), "S >= 2"),
    ("ExperimentConfig.from_dict None", lambda t: __import__("tvae_nb.recipes").recipes.ExperimentConfig.from_dict(None), "ExperimentConfig"),
    ("ExperimentConfig.from_dict a list", lambda t: __import__("tvae_nb.recipes").recipes.ExperimentConfig.from_dict([1]), "ExperimentConfig"),
    ("ExperimentConfig.from_dict without name",
     lambda t: __import__("tvae_nb.recipes").recipes.ExperimentConfig.from_dict({k: v for k, v in tiny().to_dict().items() if k != "name"}),
     "name"),
]


@pytest.mark.parametrize("case,fn,msg", LIB, ids=[c[0] for c in LIB])
def test_library_inputs(tmp_path, case, fn, msg):
    category("library inputs")
    with pytest.raises(ValueError) as e: fn(tmp_path)
    one_line_error(e, msg)


def test_library_single_image_evaluation_is_drawn_across_the_classes():
    "fig3-torus-mnist was evaluated on the first test digits, which are sorted by label (16 zeros at fast)."
    category("library inputs", 2)
    from tvae_nb.recipes import make_experiment
    from tvae_nb.evaluation import across_classes, eval_batch
    b = eval_batch(make_experiment("fig3-torus-mnist", "fast"))
    assert len(b.labels) == make_experiment("fig3-torus-mnist", "fast").n_eval and len(set(b.labels.tolist())) == 10
    y = torch.arange(10).repeat_interleave(5)
    assert sorted(y[across_classes(y, 10, seed=3)].tolist()) == list(range(10))
    assert torch.equal(across_classes(y, 7, seed=3), across_classes(y, 7, seed=3))
    with pytest.raises(ValueError) as e: across_classes(y, 51)
    one_line_error(e, "n must be an integer in [1, 50], got n=51")


# =============================================================================== exercise checkers (on copies)
def _kl_ref(mu, logvar): return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)


CHECKER_CASES = [
    ("a right KL written in place (mu.pow_)", lambda mu, lv: 0.5 * (mu.pow_(2) + lv.exp() - 1 - lv).sum(-1), True),
    ("a right KL that then zeroes its inputs", lambda mu, lv: (_kl_ref(mu, lv), mu.zero_(), lv.zero_())[0], True),
    ("a wrong KL that zeroes mu and logvar first", lambda mu, lv: (mu.zero_(), lv.zero_(), _kl_ref(mu, lv))[2], False),
    ("a wrong KL that writes the answer into mu", lambda mu, lv: mu.copy_(torch.zeros_like(mu)).sum(-1), False),
]


@pytest.mark.parametrize("case,f,ok", CHECKER_CASES, ids=[c[0] for c in CHECKER_CASES])
def test_exercise_checkers_use_copies(case, f, ok, capsys):
    category("exercise checkers")
    from tvae_nb.exercises import check_kl
    res = check_kl(f)
    assert bool(getattr(res, "ok", res)) is ok, (case, res)


# ======================================================================================================== counts
def test_zz_counts(capsys):
    "The attack suite's cases per category (the last test of the file: every case above has counted itself)."
    with capsys.disabled():
        print("\n[test_attacks] cases per category:")
        for k, v in CASES.items(): print(f"  {k}: {v}")
        print(f"  all: {sum(CASES.values())}")
    assert sum(CASES.values()) >= 80


# ============================================================================ widgets
def _widget_cases():
    import tvae_nb.widgets as w
    x = torch.rand(4, 3, 1, 28, 28)
    acts, labels, imgs = torch.rand(6, 9), torch.arange(6) % 10, torch.rand(6, 1, 28, 28)
    return [
        ("roll_explorer on a non-model", lambda: w.roll_explorer(object(), x), "model must be a capsule model"),
        ("roll_explorer on images, not sequences", lambda: w.roll_explorer(_tiny_tvae(), x[:, 0]), "x must be sequences"),
        ("roll_explorer on one-frame sequences", lambda: w.roll_explorer(_tiny_tvae(), x[:, :1]), "S >= 2"),
        ("topography_explorer with a non-square torus", lambda: w.topography_explorer(torch.rand(6, 8), labels, imgs), "side*side"),
        ("topography_explorer with labels 10..15", lambda: w.topography_explorer(acts, labels + 10, imgs), "labels must be"),
        ("topography_explorer with float labels", lambda: w.topography_explorer(acts, labels.float(), imgs), "integer digit labels"),
        ("topography_explorer with too few images", lambda: w.topography_explorer(acts, labels, imgs[:3]), "images must be"),
        ("topography_explorer n_top=0", lambda: w.topography_explorer(acts, labels, imgs, n_top=0), "n_top must be"),
        ("sequence_viewer on colour images", lambda: w.sequence_viewer(torch.rand(3, 3, 28, 28)), "grey square images"),
        ("sequence_viewer seq_len=1", lambda: w.sequence_viewer(torch.rand(3, 1, 28, 28), seq_len=1), "seq_len must be"),
        ("sequence_viewer transform 'shear'", lambda: w.sequence_viewer(torch.rand(3, 1, 28, 28), "shear"), "transform"),
    ]


@pytest.mark.parametrize("i", range(11))
def test_widgets_refuse_bad_input_in_one_line(i):
    category("widgets")
    case, fn, msg = _widget_cases()[i]
    with pytest.raises(ValueError) as e: fn()
    one_line_error(e, msg)
