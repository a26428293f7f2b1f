"""`tvae-nb`'s help is the library's docments: one text for the API pages and the command line.

A flag that passes a parameter of `make_experiment`, `run_experiment` (and its `RunLimit`), `table1` or
`table1_experiments` on shows that parameter's docment, which `tvae_nb.cli.source_docments` reads from the source
without importing the module (and torch). Checked here: the reader agrees with fastcore's `docments`; every such flag
shows its docment, and every flag of `show`, `run` and `table1` is either such a flag or a known command-line-only one;
and the help still answers without torch.
"""
import argparse, os, re, subprocess, sys

import pytest
from fastcore.docments import docments

from tvae_nb.cli import _BUDGETS, _TABLE1_TRANSFORMS, build_parser, source_docments
from test_docments import field_docments

# (command, flag, module, function or class, parameter): the flag passes the parameter on
FROM_DOCMENTS = [
    *[(cmd, flag, "tvae_nb.recipes", "make_experiment", p) for cmd in ("show", "run") for flag, p in
      [("name", "name"), ("--budget", "budget"), ("--seed", "seed"), ("--steps", "steps"), ("--lr", "lr"),
       ("--grad-clip", "grad_clip")]],
    *[("run", flag, "tvae_nb.runner", "run_experiment", p) for flag, p in
      [("--out", "out_dir"), ("--device", "device"), ("--resume", "resume"), ("--overwrite", "overwrite"),
       ("--no-progress", "progress"), ("--source", "source")]],
    ("run", "--max-seconds", "tvae_nb.runner", "RunLimit", "seconds"),                  # `limit=RunLimit(seconds=...)`
    *[("table1", flag, "tvae_nb.table1", "table1", p) for flag, p in
      [("--out", "out"), ("--device", "device"), ("--jobs", "jobs"), ("--overwrite", "overwrite"),
       ("--no-progress", "progress"), ("--source", "source")]],
    *[("table1", flag, "tvae_nb.table1", "table1_experiments", p) for flag, p in
      [("--budget", "budget"), ("--seed", "seed"), ("--transform", "transform")]],
]
CLI_ONLY = {"-h", "--data-root"}          # flags that pass no library parameter on


def _actions(cmd: str) -> dict:
    "Flag (or positional's name) -> argparse action, of sub-command `cmd`."
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {(a.option_strings or [a.dest])[0]: a for a in sub.choices[cmd]._actions}


def _shown(doc: str, default) -> str:
    "What the help shows of docment `doc`: its '(None: X)' reads '(default: X)' if the flag passes None on, else it goes."
    return re.sub(r"\s*\(None: ([^()]*)\)", r" (default: \1)" if default is None else "", doc)


@pytest.mark.parametrize("module,name", [("tvae_nb.runner", "run_experiment"), ("tvae_nb.table1", "table1"),
                                         ("tvae_nb.table1", "table1_experiments"), ("tvae_nb.recipes", "make_experiment")])
def test_source_docments_equal_fastcores(module, name):
    import importlib
    f = getattr(importlib.import_module(module), name)
    expected = {k: v for k, v in docments(f).items() if k != "return"}
    assert source_docments(module, name) == expected and all(expected.values())


def test_source_docments_reads_a_records_fields():
    from tvae_nb.runner import RunLimit
    assert source_docments("tvae_nb.runner", "RunLimit") == field_docments(RunLimit)


def test_source_docments_names_a_bad_argument():
    with pytest.raises(ValueError, match="module='tvae_nb.nothing'"): source_docments("tvae_nb.nothing", "f")
    with pytest.raises(ValueError, match="module='nothing.at_all'"): source_docments("nothing.at_all", "f")
    with pytest.raises(ValueError, match="name='nothing'.*expected one of"): source_docments("tvae_nb.runner", "nothing")


@pytest.mark.parametrize("cmd,flag,module,name,param", FROM_DOCMENTS, ids=[f"{c[0]} {c[1]}" for c in FROM_DOCMENTS])
def test_each_flag_shows_its_docment(cmd, flag, module, name, param, monkeypatch):
    action = _actions(cmd)[flag]
    doc = source_docments(module, name)[param]
    assert doc, f"{module}.{name}: {param} has no docment"
    text = _shown(doc, action.default if action.default is not False else None)      # a store_true passes a bool
    assert text in action.help.replace("%%", "%"), (action.help, text)
    monkeypatch.setenv("COLUMNS", "10000")                 # one line per flag: the rendered help holds the text whole
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[cmd]
    assert text in sub.format_help()


@pytest.mark.parametrize("cmd", ["show", "run", "table1"])
def test_every_flag_is_from_a_docment_or_known_cli_only(cmd):
    mapped = {flag for c, flag, *_ in FROM_DOCMENTS if c == cmd}
    assert mapped and set(_actions(cmd)) - CLI_ONLY == mapped


def test_the_help_lists_every_budget_and_transform():
    "The docments list the choices by name: they still agree with the library's constants."
    for cmd in ("run", "table1"): assert all(f"'{b}'" in _actions(cmd)["--budget"].help for b in _BUDGETS)
    assert all(f"'{t}'" in _actions("table1")["--transform"].help for t in _TABLE1_TRANSFORMS)


def test_the_help_reads_the_docments_without_torch():
    code = ("import sys\nfrom tvae_nb.cli import main\n"
            "for a in (['run', '--help'], ['table1', '--help'], ['show', '--help']):\n"
            "    try: main(a)\n    except SystemExit: pass\n"
            "print('LOADED', sorted(m for m in sys.modules if m == 'torch' or m.startswith('tvae_nb.')))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(os.path.dirname(os.path.dirname(__file__))),
                                                       os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and "LOADED ['tvae_nb.cli']" in r.stdout, r.stdout[-500:] + r.stderr[-500:]
    assert "training seed (default: the experiment's)" in r.stdout            # a docment, read from recipes.py
