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
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "specproc"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _import_statements(path: Path):
    """``(target module, imported names)`` of every import statement of a file (relative ones resolved)."""
    mod = _module_name(path)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
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
        tree = ast.parse(f.read_text(encoding="utf-8"))
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
