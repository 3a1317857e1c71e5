"""The typed technique plugin (``specproc.core.technique.Technique``) and how its consumers use it."""
from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
import types

import pytest

import specproc as sp
from specproc import plugins
from specproc.core.errors import PluginError
from specproc.core.technique import LazyCallable, QuantitySpec, Technique

BUILTIN = ["afm", "echem", "eels", "ftir", "nmr", "xps", "xrd"]


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_technique_declares_what_is_registered(name):
    """Each built-in entry point names a Technique whose readers and processors are exactly the
    registered readers of that technique and its processors (the declaration is not a second list
    that can drift)."""
    t = plugins.get("techniques", name)
    assert isinstance(t, Technique) and t.name == name and t.title.strip()
    readers = {n for n, r in plugins.loaded("readers").items() if getattr(r, "technique", None) == name}
    procs = {n for n in plugins.available("processors") if n.split(".", 1)[0] == name}
    assert set(t.readers) == readers and len(t.readers) == len(readers)
    assert set(t.processors) == procs and t.default_processor == t.processors[0]
    assert isinstance(t.add_cli, LazyCallable) and isinstance(t.report_section, LazyCallable)
    assert t.quantities and all(isinstance(q, QuantitySpec) and q.pattern and q.description for q in t.quantities)
    # sp.<name> is the api module; the report module's TITLE is the technique's (one definition)
    api = getattr(sp, name)
    assert api is t.load_api() and api.technique is t
    report = importlib.import_module(f"specproc.techniques.{name}.report")
    assert report.TITLE == t.title


def test_loading_a_technique_imports_neither_its_cli_nor_its_report():
    """The callables are resolved on first call: ``import specproc`` imports no technique, and
    loading every Technique (what ``specproc plugins`` does) imports no technique's cli or report."""
    code = ("import sys, json, specproc; from specproc import plugins\n"
            "before = [m for m in sys.modules if m.startswith('specproc.techniques')]\n"
            "ts = plugins.loaded('techniques')\n"
            "after = [m for m in sys.modules if m.startswith('specproc.techniques.') and m.count('.') > 2]\n"
            "print(json.dumps({'before': before, 'after': after, 'n': len(ts)}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    d = json.loads(out.stdout.strip().splitlines()[-1])
    assert d["before"] == [] and d["n"] >= len(BUILTIN)
    assert not [m for m in d["after"] if m.rsplit(".", 1)[-1] in ("cli", "report", "processors")], d["after"]


def test_technique_is_frozen_and_checked():
    t = Technique("demo", "Demo", readers=["a"], processors=["demo.run"], quantities=[("x.y_nm", "nm", "a length")])
    assert t.readers == ("a",) and t.quantities == (QuantitySpec("x.y_nm", "nm", "a length"),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.title = "other"
    with pytest.raises(PluginError, match="non-empty name"):
        Technique("", "x")
    with pytest.raises(PluginError, match="non-empty title"):
        Technique("demo", " ")
    with pytest.raises(PluginError, match="report_section.*package.module:attr"):
        Technique("demo", "Demo", report_section="no_colon_here")
    with pytest.raises(PluginError, match=r"\(pattern, unit, description\)"):
        Technique("demo", "Demo", quantities=[("only-a-pattern",)])


def test_lazy_callable_resolves_on_first_call_and_names_a_broken_reference():
    f = LazyCallable("json:dumps")
    assert f._fn is None and f({"a": 1}) == '{"a": 1}' and f.resolve() is json.dumps
    assert LazyCallable("json:dumps") == f and "json:dumps" in repr(f)
    with pytest.raises(PluginError, match="no_such_module_xyz:f cannot be imported"):
        LazyCallable("no_such_module_xyz:f")()
    with pytest.raises(PluginError, match="json:__doc__ is not callable"):
        LazyCallable("json:__doc__")()


def test_repr_html_escapes_and_lists_quantities():
    t = Technique("demo", "<b>Demo</b>", quantities=[("<peak>.center_mm", "mm", "centre")])
    h = t._repr_html_()
    assert "&lt;b&gt;Demo&lt;/b&gt;" in h and "&lt;peak&gt;.center_mm" in h and "<b>Demo" not in h


def _old_style_module(name: str) -> types.ModuleType:
    mod = types.ModuleType(f"thirdparty_{name}", "An earlier module plugin.\n\nMore text.")
    mod.TITLE = "Old style"
    mod.add_cli = lambda sub: sub.add_parser(name, help="old-style command")
    mod.report_section = lambda results: None
    mod.answer = lambda: 42
    return mod


def test_module_plugin_is_adapted_with_a_deprecation_warning():
    mod = _old_style_module("oldstyle")
    with pytest.warns(DeprecationWarning, match="technique plugin 'oldstyle' is a module"):
        plugins.register("techniques", "oldstyle", mod)
    try:
        t = plugins.get("techniques", "oldstyle")
        assert isinstance(t, Technique) and t.title == "Old style" and t.description == "An earlier module plugin."
        assert sp.oldstyle is mod and sp.oldstyle.answer() == 42            # sp.<name> still the module
        from specproc.cli import build_parser

        assert "oldstyle" in build_parser().format_help()                      # its command is added
    finally:
        plugins.unregister("techniques", "oldstyle")
    assert "oldstyle" not in plugins.available("techniques")


def test_a_registered_technique_name_must_match():
    with pytest.raises(PluginError, match="declares the name 'other'"):
        plugins.register("techniques", "mine", Technique("other", "Other"))
    assert "mine" not in plugins.available("techniques")
