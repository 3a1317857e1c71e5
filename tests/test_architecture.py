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


def _imports(path: Path) -> set[str]:
    mod = _module_name(path)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)
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
