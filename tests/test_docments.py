"""Every public function and method of `tvae_nb` documents each of its parameters with a docment.

A *docment* is nbdev's per-parameter comment in the signature (`budget: str, # 'fast', 'quick', 'long' or 'paper'`), read
by `fastcore.docments.docments` and shown by `show_doc` in the API pages. Audited: every name in a module's `__all__`
that the module defines; for a function, its parameters; for a class, its public methods and `__init__`. A dataclass's
generated `__init__` and a NamedTuple are judged by their fields' comments (`n_caps: int  # capsules in the latent`),
collected over the class and its dataclass bases. Not audited: `self`/`cls`, `*args`/`**kwargs`, and parameters whose
name starts with `_`.

Run `python tests/test_docments.py` for the report, module by module.
"""
import ast, dataclasses, functools, importlib, importlib.util, inspect, io, json, pkgutil, re, textwrap, tokenize
from pathlib import Path

import pytest
from fastcore.docments import docments

import tvae_nb


def field_docments(cls) -> dict:
    "Field name -> comment of the annotated fields of class `cls` (a dataclass or NamedTuple) and its bases."
    res = {}
    for base in reversed(cls.__mro__):                       # a subclass's comment overrides its base's
        if base is object or base.__module__ == "builtins": continue
        try: src = textwrap.dedent(inspect.getsource(base))
        except (OSError, TypeError): continue
        tree = ast.parse(src)
        if not tree.body or not isinstance(tree.body[0], ast.ClassDef): continue
        comments = {t.start[0]: t.string.lstrip("#").strip()
                    for t in tokenize.generate_tokens(io.StringIO(src).readline) if t.type == tokenize.COMMENT}
        for node in tree.body[0].body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                doc = comments.get(node.end_lineno) or comments.get(node.lineno)
                if doc or node.target.id not in res: res[node.target.id] = doc
    return res


def is_namedtuple(cls) -> bool: return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")


def audited_params(f) -> list[str]:
    "The parameters of `f` that need a docment: not self/cls, *args/**kwargs, nor names starting with `_`."
    try: ps = inspect.signature(f).parameters.values()
    except (TypeError, ValueError): return []
    return [p.name for p in ps if p.name not in ("self", "cls") and not p.name.startswith("_")
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def undocumented(f) -> list[str]:
    "The audited parameters of function `f` without a docment."
    params = audited_params(f)
    if not params: return []
    try: d = docments(f)
    except Exception: d = {}
    return [p for p in params if not d.get(p)]


def generated_init(cls) -> bool:
    "Whether `cls.__init__` is one that `dataclasses` wrote (no source of its own)."
    init = vars(cls).get("__init__")
    return dataclasses.is_dataclass(cls) and inspect.isfunction(init) and init.__code__.co_filename == "<string>"


def audit_class(name: str, cls) -> list[tuple[str, list[str]]]:
    "(qualified name, undocumented parameters) of class `cls`'s fields and public methods, those with any missing."
    out = []
    if dataclasses.is_dataclass(cls) or is_namedtuple(cls):
        fdocs = field_docments(cls)
        if dataclasses.is_dataclass(cls):                        # and as fastcore's `docments`, which `show_doc` uses
            for base in cls.__mro__[::-1]:
                if dataclasses.is_dataclass(base): fdocs.update({k: v for k, v in docments(base).items() if v})
        names = [f.name for f in dataclasses.fields(cls) if f.init] if dataclasses.is_dataclass(cls) else list(cls._fields)
        miss = [n for n in names if not n.startswith("_") and not fdocs.get(n)]
        if miss: out.append((f"{name} (fields)", miss))
    for k, v in vars(cls).items():
        if k.startswith("_") and k != "__init__": continue
        if k == "__init__" and generated_init(cls): continue   # judged by the fields above
        f = v.__func__ if isinstance(v, (classmethod, staticmethod)) else v
        if not inspect.isfunction(f): continue
        miss = undocumented(f)
        if miss: out.append((f"{name}.{k}", miss))
    return out


def audit_module(mod) -> list[tuple[str, list[str]]]:
    "(qualified name, undocumented parameters) for each public function, method or record of `mod` with any missing."
    out = []
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if getattr(obj, "__module__", None) != mod.__name__: continue   # a re-export: audited where it is defined
        if inspect.isfunction(obj):
            miss = undocumented(obj)
            if miss: out.append((name, miss))
        elif inspect.isclass(obj): out += audit_class(name, obj)
    return out


def modules():
    "Every public module of `tvae_nb`."
    return [importlib.import_module(f"tvae_nb.{m.name}") for m in pkgutil.iter_modules(tvae_nb.__path__)
            if not m.name.startswith("_")]


def audit() -> dict[str, list[tuple[str, list[str]]]]:
    "Module name -> its undocumented items, for every module with any."
    return {m.__name__: miss for m in modules() if (miss := audit_module(m))}


# --- the audit itself can fail ---------------------------------------------------------------------------------------

def _documented(x: int, # a number
                y: int = 0, # another
                *args, _private=None, **kwargs) -> int:
    "Documented."
    return x

def _undocumented(x, y: int = 0, # documented
                  z=None) -> int:
    return x

@dataclasses.dataclass
class _Rec:
    a: int          # documented
    b: int = 0

@dataclasses.dataclass
class _SubRec(_Rec):
    c: int = 1      # documented

class _Thing:
    def __init__(self, n: int, # documented
                 m: int): ...
    def go(self, x): ...
    @classmethod
    def make(cls, d: dict, # documented
            ): ...
    def _hidden(self, q): ...


def test_audit_flags_undocumented():
    assert undocumented(_documented) == []
    assert undocumented(_undocumented) == ["x", "z"]
    assert audit_class("_Rec", _Rec) == [("_Rec (fields)", ["b"])]
    assert audit_class("_SubRec", _SubRec) == [("_SubRec (fields)", ["b"])]      # inherited fields are judged too
    assert audit_class("_Thing", _Thing) == [("_Thing.__init__", ["m"]), ("_Thing.go", ["x"])]


def test_audit_reads_namedtuple_fields():
    from tvae_nb.vae import Loss
    assert is_namedtuple(Loss) and set(field_docments(Loss)) == set(Loss._fields)


def test_audit_covers_the_library():
    "The audit sees every module and a good number of functions (a broken audit would pass vacuously)."
    names = {m.__name__.split(".")[-1] for m in modules()}
    assert {"core", "data", "vae", "tvae", "train", "topography", "metrics", "recipes", "checkpoint", "runner", "table1", "cli"} <= names
    n = sum(len(audited_params(getattr(m, k))) for m in modules() for k in getattr(m, "__all__", [])
            if inspect.isfunction(getattr(m, k)))
    assert n > 300


# --- the library -----------------------------------------------------------------------------------------------------

def report(missing: dict) -> str:
    return "\n".join(f"{mod}.{qn}: {', '.join(ps)}" for mod, l in missing.items() for qn, ps in l)


@pytest.mark.parametrize("mod", modules(), ids=lambda m: m.__name__)
def test_every_parameter_has_a_docment(mod):
    miss = audit_module(mod)
    assert not miss, "parameters without a docment:\n" + report({mod.__name__: miss})



# --- every public function and method has an entry in its chapter's API reference ------------------------------------

def public_names(mod) -> list[str]:
    "The public functions and classes `mod` defines, and the public methods of those classes (torch's `extra_repr` aside)."
    names = []
    for n in getattr(mod, "__all__", []):
        o = getattr(mod, n)
        if getattr(o, "__module__", None) != mod.__name__: continue
        names.append(n)
        if inspect.isclass(o):
            names += [f"{n}.{k}" for k, v in vars(o).items() if not k.startswith("_") and k != "extra_repr" and inspect.isfunction(v)]
    return names


_spec = importlib.util.spec_from_file_location("render_pages", Path(__file__).resolve().parents[1] / "tools" / "render_pages.py")
rp = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(rp)
NBS = Path(__file__).resolve().parents[1] / "nbs"


@functools.lru_cache(maxsize=None)
def reference_entries(module: str) -> frozenset:
    "What the rendered API reference of the notebook that exports `module` (such as 'data') documents."
    nb = next(p for p in sorted(NBS.glob("*.ipynb")) if rp.module_of(p) == module)
    return frozenset(rp.api_entries(nb))


@pytest.mark.parametrize("mod", modules(), ids=lambda m: m.__name__)
def test_every_public_name_is_in_the_generated_reference(mod):
    missing = [n for n in public_names(mod) if n not in reference_entries(mod.__name__.split(".", 1)[1])]
    assert not missing, f"the API reference generated for {mod.__name__} leaves out: {missing}"


def test_no_notebook_keeps_a_reference_by_hand():
    "The API reference is generated when the pages are rendered; no notebook in nbs/ holds `show_doc` cells of its own."
    kept = {p.stem: n for p in sorted(NBS.glob("*.ipynb")) if (n := sum(
        1 for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code" and "show_doc(" in "".join(c["source"])))}
    assert not kept, f"notebooks with show_doc cells (the reference is generated; remove them): {kept}"


def test_the_reference_is_written_under_its_heading(tmp_path):
    "On a copy, `add_api_reference` puts one show_doc cell per entry right under '## API reference', before what follows."
    nb = json.loads((NBS / "01b_samplers.ipynb").read_text())
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": ["a last note"]})
    copy = tmp_path / "01b_samplers.ipynb"; copy.write_text(json.dumps(nb))
    n = rp.add_api_reference(copy)
    cells = json.loads(copy.read_text())["cells"]
    head = next(i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## API reference"))
    docs = ["".join(c["source"]) for c in cells[head + 2:head + 2 + n]]
    assert n == len(rp.api_entries(NBS / "01b_samplers.ipynb")) >= 10 and docs[0] == "show_doc(ImageBatch)"
    assert all(d.startswith("show_doc(") for d in docs) and "".join(cells[-1]["source"]) == "a last note"
    assert "import show_doc" in "".join(cells[head + 1]["source"])


if __name__ == "__main__":
    missing = audit()
    print(report(missing))
    print("items:", sum(len(l) for l in missing.values()), " parameters:", sum(len(ps) for l in missing.values() for _, ps in l))
