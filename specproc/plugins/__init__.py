"""Plugin discovery: readers, processors and techniques through entry points.

Modelled on xarray's backend plugins: one entry-point group per plugin kind
(``specproc.readers``, ``specproc.processors``, ``specproc.techniques``); specproc's own
built-ins are declared in its ``pyproject.toml`` exactly like a third party's, so there is a
single discovery path. Discovery is cached (``refresh()`` clears it); a plugin that fails to
import becomes a warning, duplicate names warn and the first wins.
"""
from __future__ import annotations

import functools
import importlib.metadata as md
import warnings
from dataclasses import dataclass
from typing import Any

from ..core.errors import PluginError

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


def refresh() -> None:
    """Forget cached discovery (after installing a plugin in a running session)."""
    _discover.cache_clear()


def available(kind: str) -> dict[str, PluginInfo]:
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r}; one of {sorted(GROUPS)}")
    return _discover(kind)


def get(kind: str, name: str):
    """Load plugin ``name`` of ``kind`` (instantiating classes)."""
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
                # technique modules describe themselves by TITLE / their docstring
                desc = (getattr(obj, "description", "") or getattr(obj, "TITLE", "")
                        or (getattr(obj, "__doc__", "") or "").strip().split("\n")[0])
            except PluginError as exc:
                desc = f"BROKEN: {exc}"
            rows.append({"kind": kind[:-1], "name": name, "package": info.package, "version": info.version,
                         "entry_point": info.value, "description": desc})
    return pd.DataFrame(rows, columns=["kind", "name", "package", "version", "entry_point", "description"])
