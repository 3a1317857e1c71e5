"""XPS inelastic backgrounds: linear, Shirley (iterative) and Tougaard (U2 / U3), batched over spectra.

The algorithms live in the one registry of backgrounds, :mod:`specproc.fitting.baselines`; this
module gives them XPS's names (``tougaard3`` = Tougaard's U3 cross section) and array-returning
calls. Conventions: ``x`` is the **binding energy** (eV), either order; ``Y`` is ``(m,)`` or
``(..., m)``; end-point intensities are averages of ``n_avg`` channels at each end (CasaXPS's
default averaging); every background rises towards high BE (electrons from peaks at lower BE).
"""
from __future__ import annotations

import numpy as np

from ...core.errors import ParameterError
from ...fitting import baselines as _bl
from ...fitting.baselines import U2, U3, end_levels, shirley_from_peaks, tougaard_kernel

__all__ = ["BACKGROUNDS", "CHOICES", "U2", "U3", "background", "linear", "shirley", "tougaard", "shirley_from_peaks",
           "tougaard_kernel", "end_levels"]

#: the backgrounds computed from the data alone (the registry names, in XPS's words)
BACKGROUNDS = ("none", "linear", "shirley", "tougaard", "tougaard3")
#: every choice of an XPS fit, the one list (parameters, CLI, docs): ``shirley-active`` is Shirley
#: recomputed from the fitted peaks and refitted (:func:`~specproc.techniques.xps.fitting.fit_stack`)
CHOICES = ("shirley", "shirley-active", "linear", "tougaard", "tougaard3", "none")


def _run(method, x, Y, **kw):
    # bad input raises ParameterError, a ValueError as the XPS callers expect
    return _bl.baseline(x, Y, method, **kw)


def linear(x, Y, n_avg: int = 3):
    """Straight line between the averaged end points of each spectrum."""
    return _run("linear", x, Y, n_avg=n_avg)[0]


def shirley(x, Y, n_avg: int = 3, max_iter: int = 50, tol: float = 1e-6, return_info: bool = False):
    """Iterative Shirley background (Proctor–Sherwood), all spectra at once (see
    :mod:`specproc.fitting.baselines`). ``return_info`` also returns ``{"iterations", "converged"}``."""
    B, info = _run("shirley", x, Y, n_avg=n_avg, max_iter=max_iter, tol=tol)
    if return_info:
        conv = info["converged"].reshape(np.shape(Y)[:-1])
        return B, {"iterations": info["iterations"], "converged": conv}
    return B


def tougaard(x, Y, kind: str = "U2", n_avg: int = 3, fit_scale: bool = True, B: float | None = None,
             C: float | None = None, D: float | None = None, return_scale: bool = False):
    """Tougaard background (``kind`` U2, metals, or U3, polymers); ``return_scale`` also returns the
    fitted cross-section scale per spectrum (see :mod:`specproc.fitting.baselines`)."""
    Bg, info = _run("tougaard", x, Y, kind=kind, n_avg=n_avg, fit_scale=fit_scale, B=B, C=C, D=D)
    return (Bg, info["scale"].reshape(np.shape(Y)[:-1])) if return_scale else Bg


def background(kind: str, x, Y, **kw):
    """Dispatch by XPS name: ``none``, ``linear``, ``shirley``, ``tougaard`` (U2), ``tougaard3`` (U3)."""
    if kind == "tougaard3":
        return tougaard(x, Y, "U3", **kw)
    if kind == "tougaard":
        return tougaard(x, Y, "U2", **kw)
    if kind not in BACKGROUNDS:
        raise ParameterError(f"unknown background {kind!r}; one of {', '.join(BACKGROUNDS)}")
    return _run(kind, x, Y, **kw)[0]
