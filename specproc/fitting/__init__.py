"""Fitting shared by every technique: lineshapes, model specs, component models and the batch engine.

Submodules are imported lazily (lmfit, numba and xarray are heavy), so ``import specproc.fitting``
is cheap; ``specproc.fitting.fit_batch`` imports :mod:`specproc.fitting.batch` on first use.
"""
from __future__ import annotations

import importlib

_LAZY = {"fit_batch": "batch", "evaluate_batch": "batch", "compile_model": "batch", "ModelSpec": "models",
         "Peak": "models", "Link": "models", "GLProductModel": "components", "GLSumModel": "components",
         "HertzParaboloidModel": "components", "SneddonConeModel": "components", "DMTModel": "components"}
__all__ = sorted(_LAZY) + ["lineshapes", "models", "batch", "components"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    if name in ("lineshapes", "models", "batch", "components"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
