"""Plugin discovery: readers, processors and techniques through entry points.

Modelled on xarray's backend plugins: one entry-point group per plugin kind
(``specproc.readers``, ``specproc.processors``, ``specproc.techniques``); specproc's own
built-ins are declared in its ``pyproject.toml`` exactly like a third party's, so there is a
single discovery path. Discovery is cached (``refresh()`` clears it); a plugin that fails to
import becomes a warning, duplicate names warn and the first wins.

:func:`register` adds a plugin object in the running session (a notebook, a test, a script) without
packaging it: it is listed and used like an installed one, in this process and in the worker
processes the executor forks from it (not on Dask workers, which import plugins by entry point).
"""
from __future__ import annotations

import functools
import importlib.metadata as md
import warnings
from dataclasses import dataclass
from typing import Any

from ..core.errors import PluginError
from ..core.technique import Technique, as_technique

GROUPS = {"readers": "specproc.readers", "processors": "specproc.processors",
          "techniques": "specproc.techniques"}


@dataclass
class PluginInfo:
    name: str
    kind: str
    value: str
    package: str
    version: str
    _ep: Any = None
    _obj: Any = None

    def load(self):
        if self._obj is None:
            try:
                obj = self._ep.load()
            except Exception as exc:  # a broken plugin must not break specproc
                raise PluginError(f"plugin {self.name!r} ({self.value}) failed to import: {exc}") from exc
            self._obj = obj() if isinstance(obj, type) else obj
        if self.kind == "techniques":  # a Technique of that name; an earlier module plugin adapted (warns)
            self._obj = as_technique(self._obj, self.name)
        return self._obj


@functools.lru_cache(maxsize=None)
def _discover(kind: str) -> dict[str, PluginInfo]:
    out: dict[str, PluginInfo] = {}
    for ep in md.entry_points(group=GROUPS[kind]):
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, kind, ep.value, dist.name if dist else "?", dist.version if dist else "?", ep)
        if ep.name in out:
            if out[ep.name].value != ep.value:
                warnings.warn(f"duplicate specproc {kind} plugin {ep.name!r}: {ep.value} ignored, "
                              f"{out[ep.name].value} kept", RuntimeWarning, stacklevel=2)
            continue
        out[ep.name] = info
    return out


#: plugins registered in this session (:func:`register`), by kind: name -> PluginInfo
_SESSION: dict[str, dict[str, PluginInfo]] = {k: {} for k in GROUPS}


def register(kind: str, name: str, obj, *, replace: bool = False) -> None:
    """Register ``obj`` (a class is instantiated on first use, like an entry point) as plugin ``name``.

    Parameters
    ----------
    kind : {"readers", "processors", "techniques"}
    name : str
        The plugin's name (a reader name for ``sp.read(path, reader=name)``, a processor's
        ``"<technique>.<verb>"``, a technique's command name).
    obj : class, instance, or (techniques) a :class:`~specproc.core.technique.Technique`
        A technique given as a module (``TITLE``, ``add_cli``, ``report_section`` attributes) is
        adapted by :meth:`Technique.from_module <specproc.core.technique.Technique.from_module>`
        with a DeprecationWarning.
    replace : bool
        Replace an installed or registered plugin of that name; without it a clash is a
        :class:`~specproc.core.errors.PluginError` (a session plugin never hides an installed one
        silently).
    """
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r}; one of {sorted(GROUPS)}")
    if not isinstance(name, str) or not name.strip():
        raise PluginError(f"a {kind[:-1]} plugin needs a non-empty name, got {name!r}")
    if not replace and (name in _discover(kind) or name in _SESSION[kind]):
        raise PluginError(f"a {kind[:-1]} named {name!r} is already registered; pass replace=True to replace it")
    if kind == "techniques":
        obj = as_technique(obj, name)
        api = obj.api if isinstance(obj.api, str) else getattr(obj.api, "__name__", None)
        value = f"{api or '<session>'}:{name}"
    else:
        value = f"{getattr(obj, '__module__', None) or getattr(obj, '__name__', '?')}:" \
                f"{getattr(obj, '__qualname__', None) or type(obj).__qualname__}"
    _SESSION[kind][name] = PluginInfo(name, kind, value, "<session>", "", None,
                                      obj() if isinstance(obj, type) else obj)


def unregister(kind: str, name: str) -> None:
    """Remove a plugin added by :func:`register` (installed plugins are not affected)."""
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r}; one of {sorted(GROUPS)}")
    _SESSION[kind].pop(name, None)


def refresh() -> None:
    """Forget cached discovery (after installing a plugin in a running session)."""
    _discover.cache_clear()


def available(kind: str) -> dict[str, PluginInfo]:
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r}; one of {sorted(GROUPS)}")
    found = _discover(kind)
    return {**found, **_SESSION[kind]} if _SESSION[kind] else found


def get(kind: str, name: str):
    """Load plugin ``name`` of ``kind`` (instantiating classes; a technique is a
    :class:`~specproc.core.technique.Technique`)."""
    plugins = available(kind)
    if name not in plugins:
        raise PluginError(f"no {kind[:-1]} named {name!r}; available: {', '.join(sorted(plugins)) or 'none'}")
    return plugins[name].load()


def loaded(kind: str) -> dict[str, Any]:
    """All plugins of a kind, loaded; broken ones warn and are skipped."""
    out = {}
    for name, info in available(kind).items():
        try:
            out[name] = info.load()
        except PluginError as exc:
            warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
    return out


def list_plugins() -> "Any":
    """Table (pandas DataFrame) of registered plugins with their source package."""
    import pandas as pd

    rows = []
    for kind in GROUPS:
        for name, info in available(kind).items():
            desc = ""
            try:
                obj = info.load()
                if isinstance(obj, Technique):
                    desc = f"{obj.title} — {obj.description}" if obj.description else obj.title
                else:  # readers and processors: their class attribute, else their docstring's first line
                    desc = (getattr(obj, "description", "")
                            or (getattr(obj, "__doc__", "") or "").strip().split("\n")[0])
            except PluginError as exc:
                desc = f"BROKEN: {exc}"
            rows.append({"kind": kind[:-1], "name": name, "package": info.package, "version": info.version,
                         "entry_point": info.value, "description": desc})
    return pd.DataFrame(rows, columns=["kind", "name", "package", "version", "entry_point", "description"])
