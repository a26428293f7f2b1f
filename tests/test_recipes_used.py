"""Chapters 04 to 08 take their configs from the registry: no code cell retypes a registered recipe.

Every `TVAEConfig(...)` and `TrainConfig(...)` call in those notebooks is read with `ast`; its literal keyword
arguments (both values of a `pick(student, fast)`) are compared with every registered experiment at every budget. A
call with three or more literal arguments that all equal one experiment's settings is a copy of that recipe: when the
recipe changes, the copy would not. Small demo configs (a tiny model to show a shape) match no recipe and pass.
"""
import ast, json
from dataclasses import fields
from pathlib import Path

import pytest

from tvae_nb.recipes import BUDGETS, EXPERIMENTS, make_experiment

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["04_tvae", "05_temporal_coherence", "06_equivariant_capsules", "06b_likelihood", "07_complex_transforms", "08_dsprites"]


def _literal(node):
    "The literal values of `node`: one value, both of `pick(a, b)`, or none (not a literal)."
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "pick" and len(node.args) == 2:
        return [v for a in node.args for v in _literal(a)]
    try: return [ast.literal_eval(node)]
    except (ValueError, SyntaxError, TypeError): return []


def config_calls(source: str):
    "(class name, {field: [literal values]}) for every TVAEConfig / TrainConfig call in `source`."
    try: tree = ast.parse(source)
    except SyntaxError: return
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("TVAEConfig", "TrainConfig"):
            kw = {k.arg: vals for k in node.keywords if k.arg and (vals := _literal(k.value))}
            yield node.func.id, kw


def _registry():
    "Every registered experiment at every budget: (name, budget, {'TVAEConfig': model fields, 'TrainConfig': train fields})."
    for name in EXPERIMENTS:
        for b in BUDGETS:
            c = make_experiment(name, b)
            yield name, b, {"TVAEConfig": {f.name: getattr(c.model, f.name) for f in fields(c.model)},
                            "TrainConfig": {f.name: getattr(c.train, f.name) for f in fields(c.train)}}


REGISTRY = list(_registry())


def retyped(source: str) -> list[str]:
    "The calls in `source` that copy a registered recipe, as 'Class(...) = NAME at BUDGET'."
    out = []
    for cls, kw in config_calls(source):
        if len(kw) < 3: continue
        for name, b, settings in REGISTRY:
            s = settings[cls]
            if all(k in s and any(v == s[k] or (isinstance(v, tuple) and tuple(s[k] or ()) == v) for v in vals)
                   for k, vals in kw.items()):
                out.append(f"{cls}({', '.join(kw)}) = the {cls} of {name} at --budget {b}"); break
    return out


def test_the_check_finds_a_copy():
    "A cell that retypes the quick Fig. 3 torus recipe is caught; a tiny demo config is not."
    copy = 'fig3 = TVAEConfig(topography="torus", n_caps=18, cap_dim=18, seq_len=1, K=5, hidden=(384, 256))'
    assert retyped(copy)
    assert retyped('t = TrainConfig(steps=pick(3000, 40), batch_size=64, lr=1e-3, free_bits=0.05, free_bits_u=0.05)')
    assert not retyped("cfg = TVAEConfig(n_caps=3, cap_dim=6, seq_len=6, L=3, K=3, hidden=(32, 32))")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_chapter_retypes_a_recipe(chapter):
    nb = json.loads((ROOT / "nbs" / f"{chapter}.ipynb").read_text())
    found = [r for c in nb["cells"] if c["cell_type"] == "code" for r in retyped("".join(c["source"]))]
    assert not found, f"{chapter} retypes recipe numbers; take the config from the registry instead: {found}"
