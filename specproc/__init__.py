"""specproc: instrument exports -> fitted, quantified, reported evidence.

The public API is small and lazy: heavy packages (xarray, lmfit, nmrglue, plotly,
xrayutilities, hyperspy) are imported only when used, so ``import specproc`` is fast.

>>> import specproc as sp
>>> m = sp.read("sample_data/nmr/LiBH4_11B/1")          # doctest: +SKIP
>>> fit = sp.nmr.deconvolve(m, peaks=[-44.3])            # doctest: +SKIP
"""
from __future__ import annotations

import importlib

from ._version import __version__
from .core.errors import (FitError, FormatNotRecognisedError, ParameterError, PluginError, ProcessingError,
                          ReaderError, SpecprocError)

__all__ = ["__version__", "read", "save", "list_plugins", "Result", "Quantity", "SpecprocError", "ReaderError", "FormatNotRecognisedError",
           "ParameterError", "ProcessingError", "FitError", "PluginError", "nmr", "xrd", "ftir", "eels", "xps",
           "afm", "echem", "fitting", "report", "pipeline", "evidence"]

_LAZY_FUNCS = {"read": ("specproc.io", "read"), "save": ("specproc.io.netcdf", "save"), "list_plugins": ("specproc.plugins", "list_plugins"),
               "Result": ("specproc.core.result", "Result"), "Quantity": ("specproc.core.result", "Quantity")}
_LAZY_MODULES = {"fitting": "specproc.fitting", "report": "specproc.report", "pipeline": "specproc.pipeline",
                 "evidence": "specproc.evidence", "plugins": "specproc.plugins", "export": "specproc.export"}


def __getattr__(name: str):
    if name in _LAZY_FUNCS:
        mod, attr = _LAZY_FUNCS[name]
        return getattr(importlib.import_module(mod), attr)
    if name in _LAZY_MODULES:
        return importlib.import_module(_LAZY_MODULES[name])
    # technique namespaces (sp.nmr, sp.xrd, ...): the ``api`` module of each Technique plugin
    from . import plugins

    if name in plugins.available("techniques"):
        api = plugins.get("techniques", name).load_api()
        if api is not None:
            return api
    raise AttributeError(f"module 'specproc' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
