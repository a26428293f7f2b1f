"""The library's public surface stays small: no public function or method takes more than 8 parameters; what needs
more is a config object (a dataclass, whose generated __init__ is the config itself)."""
import dataclasses
import importlib
import inspect
import pkgutil

import tvae_nb

MAX_PARAMS = 8


def _public_callables():
    for m in pkgutil.iter_modules(tvae_nb.__path__):
        if m.name.startswith("_"): continue
        mod = importlib.import_module(f"tvae_nb.{m.name}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isfunction(obj): yield f"{m.name}.{name}", obj
            elif inspect.isclass(obj) and obj.__module__ == mod.__name__:
                for k, v in vars(obj).items():
                    if not inspect.isfunction(v) or (k.startswith("_") and k != "__init__"): continue
                    if k == "__init__" and dataclasses.is_dataclass(obj): continue     # the config object itself
                    yield f"{m.name}.{name}.{k}", v


def _n_params(f) -> int:
    return sum(p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in inspect.signature(f).parameters.values())


def test_no_public_function_takes_more_than_8_parameters():
    found = list(_public_callables())
    assert len(found) > 100                                    # the scan sees the library, not an empty list
    wide = {name: _n_params(f) for name, f in found if _n_params(f) > MAX_PARAMS}
    assert not wide, f"public functions with more than {MAX_PARAMS} parameters (pass a config object): {wide}"


def test_the_counter_sees_a_wide_function():
    def wide(a, b, c, d, e, f, g, h, i, *args, **kw): ...
    assert _n_params(wide) == 9 and _n_params(lambda self, x: x) == 1
