"""The floors of the house: who may import whom (static, from the source's import statements).

* a technique imports core, fitting, io, evidence, report, plugins and the command runner
  (``specproc.runner``) — never another technique and never the top-level CLI (``specproc.cli``
  imports the techniques);
* core, fitting and io never import techniques, the pipeline or the report;
* evidence, the report and the pipeline never import a technique module by name (they reach
  techniques through plugins only);
* no technique's words in core's field names (``nucleus``, ``two_theta``).
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "specproc"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@functools.lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    """The parsed file, once per session: several tests walk every module of the package (read only)."""
    return ast.parse(path.read_text(encoding="utf-8"))


def _import_statements(path: Path):
    """``(target module, imported names)`` of every import statement of a file (relative ones resolved)."""
    mod = _module_name(path)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, tuple(a.name for a in node.names)


def _imports(path: Path) -> set[str]:
    out = set()
    for target, names in _import_statements(path):
        out.add(target)
        out.update(f"{target}.{n}" for n in names)
    return {i for i in out if i.startswith("specproc")}


def _files(sub: str):
    return sorted((PKG / sub).rglob("*.py"))


TECHNIQUES = sorted(p.name for p in (PKG / "techniques").iterdir() if (p / "__init__.py").exists())


@pytest.mark.parametrize("tech", TECHNIQUES)
def test_techniques_never_import_each_other_or_the_cli(tech):
    bad = []
    for f in _files(f"techniques/{tech}"):
        for imp in _imports(f):
            if imp == "specproc.cli" or imp.startswith("specproc.cli."):
                bad.append((f.name, imp))
            if imp.startswith("specproc.techniques.") and not imp.startswith(f"specproc.techniques.{tech}"):
                other = imp.split(".")[2]
                if other in TECHNIQUES:
                    bad.append((f.name, imp))
            if imp.startswith("specproc.pipeline"):
                bad.append((f.name, imp))
    assert not bad, bad


@pytest.mark.parametrize("floor", ["core", "fitting", "io", "plugins"])
def test_lower_floors_never_import_upper_ones(floor):
    bad = [(f.name, imp) for f in _files(floor) for imp in _imports(f)
           if imp.startswith(("specproc.techniques", "specproc.pipeline", "specproc.report", "specproc.cli"))]
    assert not bad, bad


@pytest.mark.parametrize("floor", ["evidence", "report", "pipeline"])
def test_evidence_report_pipeline_reach_techniques_through_plugins_only(floor):
    bad = [(f.name, imp) for f in _files(floor) for imp in _imports(f)
           if imp.startswith("specproc.techniques.")]
    assert not bad, bad


def test_no_technique_words_in_core_metadata():
    from specproc.core.measurement import METADATA_KEYS

    assert "nucleus" not in METADATA_KEYS and "two_theta" not in METADATA_KEYS


def test_star_import_works():
    ns: dict = {}
    exec("from specproc import *", ns)  # noqa: S102 - our own package, the check of __all__
    assert "read" in ns and "save" in ns


def test_no_pickle_load_anywhere():
    """Nothing read from disk is ever unpickled (a code-execution hole through outputs)."""
    bad = []
    for f in PKG.rglob("*.py"):
        tree = _tree(f)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("load", "loads", "Unpickler") and \
                    isinstance(node.value, ast.Name) and node.value.id in ("pickle", "cPickle", "dill", "joblib"):
                bad.append(str(f.relative_to(PKG)))
    assert not bad, bad


def _graph() -> dict[str, set[str]]:
    """Module → the specproc modules it imports (module-level and lazy imports alike; importing a
    package's submodule is an arrow to the submodule, not to the package)."""
    mods = {_module_name(p): p for p in PKG.rglob("*.py")}
    out = {}
    for mod, path in mods.items():
        deps = set()
        for target, names in _import_statements(path):
            subs = {f"{target}.{n}" for n in names}
            hit = {s for s in subs if s in mods}
            deps |= hit
            if len(hit) < len(subs) or not names:
                deps.add(target)
        out[mod] = {d for d in deps if d in mods and d != mod}
    return out


def test_no_import_circles():
    """No two modules import each other, directly or round a loop (a lazy import counts too)."""
    graph = _graph()
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, circles


#: modules still swapping the process-wide warning filters, each with why it is allowed for now
CATCH_WARNINGS_ALLOWED = {
}


def test_no_warning_filter_swaps_in_library_code():
    """``warnings.catch_warnings`` / ``simplefilter`` / ``filterwarnings`` swap or edit the process-wide
    filter list; library code runs in threads (the executor reads and fits in threads), where two
    overlapping swaps restore in the wrong order and leave every warning of the process ignored
    (or turned on). Per-thread alternatives: ``np.errstate`` (a context variable), not calling the
    library where it would warn, ``core.quiet`` for a library's own ``warn``."""
    bad = []
    for f in PKG.rglob("*.py"):
        rel = str(f.relative_to(PKG))
        if rel in CATCH_WARNINGS_ALLOWED:
            continue
        for node in ast.walk(_tree(f)):
            if isinstance(node, ast.Attribute) and node.attr in ("catch_warnings", "simplefilter",
                                                                 "filterwarnings", "resetwarnings"):
                bad.append(f"{rel}:{node.lineno} {node.attr}")
    assert not bad, bad


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(name: str) -> bool:
    rel = PKG.parent / name.replace(".", "/")
    return name.startswith("specproc") and (rel.with_suffix(".py").exists() or (rel / "__init__.py").exists())


def _reach_ins(path: Path, source: str | None = None, mod: str | None = None):
    """``(line, target)`` of every use of another module's private name in a file: ``from m import _x``,
    ``m._x`` on an imported module, and a private module (``pkg._mod``) used from outside ``pkg``."""
    mod = mod or _module_name(path)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    tree = ast.parse(source) if source is not None else _tree(path)
    modules: dict[str, str] = {}     # local name -> the module (or module attribute) it is bound to

    def outside_private_module(target: str) -> bool:
        parts = target.split(".")
        for i, part in enumerate(parts[1:], 1):
            if _private(part):
                owner = ".".join(parts[:i])
                return not (mod == owner or mod.startswith(owner + "."))
        return False

    def reach_in(full: str) -> bool:
        owner, name = full.rsplit(".", 1)
        if _private(name) and not _is_module(full):
            return owner != mod                       # another module's private function/constant
        return outside_private_module(full)            # a private module from outside its package

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                modules[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                if outside_private_module(a.name):
                    yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                full = f"{target}.{a.name}"
                modules[a.asname or a.name] = full
                if reach_in(full):
                    yield node.lineno, full
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name) \
                and node.value.id in modules and reach_in(f"{modules[node.value.id]}.{node.attr}"):
            yield node.lineno, f"{modules[node.value.id]}.{node.attr}"


#: names that look private but are documented public API
PUBLIC_DESPITE_UNDERSCORE = {"os._exit": "documented: exit without cleanup (after the output is flushed)"}

#: (module, private name it uses) -> why it is allowed for now. Each entry is a change requested
#: from the file's owner (issue #22); the public replacement is named.
REACH_INS_ALLOWED = {
    ("specproc.cli", "atexit._run_exitfuncs"):
        "no public API runs the atexit handlers before os._exit; a handler registered first (to run "
        "last) would skip the handlers registered before console() (tests/techniques/test_nmr_cli.py)",
    ("specproc.io.vamas", "vamas.vamas._read_vamas"):
        "io owner: the vamas package has no public parser of a stream; pin/replace (see #22 report)",
    ("specproc.io.afm_images", "AFMReader.jpk._load_jpk_tags"):
        "io owner (new reader): AFMReader keeps JPK's tag table private; pin AFMReader or copy the table",
}


def test_no_module_uses_another_modules_private_names():
    """A ``_name`` is its module's own, and a ``_module`` its package's own: another module using one
    depends on what its owner may change at any time. Public names (or a move to the floor that owns
    the code) instead; the allow-list above says why each remaining use is still there."""
    found = {}
    for f in sorted(PKG.rglob("*.py")):
        for line, target in _reach_ins(f):
            if target not in PUBLIC_DESPITE_UNDERSCORE:
                found.setdefault((_module_name(f), target), []).append(line)
    bad = {k: v for k, v in found.items() if k not in REACH_INS_ALLOWED}
    assert not bad, bad


def test_reach_in_check_finds_reach_ins():
    """The check itself: each form of reach-in is found; a module's own names and a package's own
    private modules are not."""
    src = ("import atexit\nfrom .batch import _selection\nfrom . import _batch_kernels\n"
           "from ._batch_kernels import CODE\nfrom ..core.plotting import _template\nfrom ..io import _nmr_axis\n"
           "import specproc.io._xrd\nfrom ..io._xrd import numbers\nimport os\n"
           "atexit._run_exitfuncs()\nos._exit(0)\ndef _own():\n    pass\n_own()\n")
    targets = sorted(t for _, t in _reach_ins(PKG / "fitting" / "probe.py", src, "specproc.fitting.probe"))
    assert targets == sorted(["specproc.fitting.batch._selection", "specproc.core.plotting._template",
                              "specproc.io._nmr_axis", "specproc.io._xrd", "specproc.io._xrd.numbers",
                              "atexit._run_exitfuncs", "os._exit"]), targets


#: the plugin attributes of an earlier technique *module*; only the adapter reads them (``explain`` is
#: also a ``ReportSection`` field, so it is not in the list)
_MODULE_PLUGIN_ATTRS = {"TITLE", "add_cli", "report_section"}


def test_technique_consumers_use_the_technique_object_not_module_attributes():
    """No ``getattr(x, "TITLE" | "add_cli" | "report_section")`` outside
    ``Technique.from_module`` (the one adapter of earlier module plugins): the CLI, the report,
    ``sp.<name>`` and ``list_plugins`` read typed ``Technique`` fields."""
    bad = []
    for f in sorted(PKG.rglob("*.py")):
        text = f.read_text(encoding="utf-8")
        if f == PKG / "core" / "technique.py" or not any(a in text for a in _MODULE_PLUGIN_ATTRS):
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr") \
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                    and node.args[1].value in _MODULE_PLUGIN_ATTRS:
                bad.append((str(f.relative_to(PKG)), node.lineno, node.args[1].value))
    assert not bad, bad


@pytest.mark.parametrize("tech", TECHNIQUES)
def test_technique_title_is_written_once(tech):
    """The title is a literal once, in the ``Technique`` declaration of the package's ``__init__.py``;
    the report section takes it from the technique object."""
    import re

    init = (PKG / "techniques" / tech / "__init__.py").read_text(encoding="utf-8")
    assert re.search(r"^technique = Technique\(", init, re.M), f"{tech}: no `technique = Technique(...)`"
    literals = [f.name for f in (PKG / "techniques" / tech).rglob("*.py")
                for _ in re.finditer(r'^\s*TITLE\s*=\s*["\']', f.read_text(encoding="utf-8"), re.M)]
    assert literals == ["__init__.py"], literals
