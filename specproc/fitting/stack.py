"""One model fitted to a stack of spectra, read row by row: the batch engine's result for techniques.

:func:`fit_stack` runs :func:`~specproc.fitting.batch.fit_batch` and returns a :class:`StackFit`:
per row (spectrum, level, pixel) the parameter values (expressions such as tied components
evaluated), standard errors, the parameters that ended at a bound (their values are limits and get no
error bar), the fit statistics and the fit warnings every Result carries. A technique builds its
model and its summary from this, never the batch plumbing (reading the Dataset by parameter name,
clipping to bounds, finding bound parameters, counting the unmasked points) again.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["StackFit", "StackRow", "fit_stack"]

#: statistics copied from the batch Dataset into each row's ``stats`` when present
_STATS = ("r2", "redchi", "chisqr", "nfev", "noise_sd", "redchi_noise")


@dataclass
class StackRow:
    """One row of a :class:`StackFit`."""

    index: int
    values: dict                     # every parameter, expressions evaluated
    errors: dict                     # standard errors of the fitted parameters (NaN when undetermined)
    bounded: list                    # fitted parameters at a bound
    stats: dict
    success: bool
    warnings: list = field(default_factory=list)

    def stderr(self, name: str) -> float | None:
        """The standard error of ``name``; None at a bound or when undetermined (never a fake error bar)."""
        e = self.errors.get(name)
        return None if (name in self.bounded or e is None or not np.isfinite(e)) else float(e)


class StackFit:
    """A batched fit (:func:`~specproc.fitting.batch.fit_batch` Dataset) with the parameters it started from.

    Parameters
    ----------
    ds : xarray.Dataset
        What ``fit_batch`` returned (one stack dim).
    params : lmfit.Parameters
        The parameters (bounds, ``vary``, ``expr``) of the fit.
    weights : array (n, m) or (m,), optional
        The fit's weights; a zero weight is a masked point (not counted as data).
    """

    def __init__(self, ds, params, weights=None):
        self.ds = ds
        self.params = params
        self.free = [n for n in params if params[n].vary and not params[n].expr]
        self._values = {n: np.asarray(ds[n].values).reshape(-1) for n in params if n in ds}
        self._errors = {n: np.asarray(ds[n + "_stderr"].values).reshape(-1) for n in params if n + "_stderr" in ds}
        self._stats = {k: np.asarray(ds[k].values).reshape(-1) for k in _STATS if k in ds}
        self._success = np.asarray(ds["success"].values, bool).reshape(-1)
        n = self._success.size
        m = None
        if weights is not None:
            W = np.asarray(weights, float)
            m = np.count_nonzero(np.broadcast_to(W, (n, W.shape[-1])), axis=-1)
        self._ndata = m
        self.method = str(ds.attrs.get("method"))
        self.timings = dict(ds.attrs.get("timings") or {})

    def __len__(self) -> int:
        return int(self._success.size)

    def ok(self, k: int) -> bool:
        """Row ``k`` converged with every fitted parameter finite."""
        return bool(self._success[k]) and all(np.isfinite(self._values[n][k]) for n in self.free if n in self._values)

    def row(self, k: int, *, noise: float | None = None, rms: float | None = None) -> StackRow:
        """Row ``k``: values clipped into their bounds (the engine may stop a hair outside), expressions
        evaluated, the bound parameters named, statistics, and the fit warnings (bounds, convergence,
        r², misfit against ``noise`` when given; ``rms`` the residual RMS, default ``sqrt(redchi)``, which
        is the RMS of the unmasked points for 0/1 weights)."""
        from .uncertainty import at_bound, fit_warnings

        p = self.params
        vals = {n: float(v[k]) for n, v in self._values.items()}
        errs = {n: float(v[k]) for n, v in self._errors.items()}
        for n in self.free:     # one Parameters object reused: lmfit copies cost ~20 ms each
            if n in vals:
                p[n].value = float(np.clip(vals[n], p[n].min, p[n].max))
        bounded = at_bound(p)
        vals = {**{n: float(p[n].value) for n in p}, **vals}    # expressions (tied components) too
        stats = {key: (int(v[k]) if key == "nfev" else float(v[k])) for key, v in self._stats.items()}
        stats.update(success=bool(self._success[k]), method=self.method, nvarys=len(self.free))
        if self._ndata is not None:
            stats["ndata"] = int(self._ndata[k])
        if rms is None and stats.get("redchi") is not None and stats["redchi"] >= 0:
            rms = float(np.sqrt(stats["redchi"]))
        warns = fit_warnings({"r2": stats.get("r2"), "success": stats["success"]}, bounded, noise=noise, rms=rms,
                             values=vals)
        return StackRow(k, vals, errs, bounded, stats, stats["success"], warns)


def fit_stack(model, x, Y, params, *, weights=None, **kwargs) -> StackFit:
    """Fit ``model`` (lmfit model or ModelSpec) with ``params`` to every row of ``Y`` (n, m) on the batch
    engine (``kwargs`` go to :func:`~specproc.fitting.batch.fit_batch`); masked points (weight 0)
    are no data. -> :class:`StackFit`."""
    from .batch import fit_batch

    Y = np.asarray(Y, float)
    if weights is not None:
        W = np.asarray(weights, float)
        Y = np.where(np.broadcast_to(W, Y.shape) > 0, Y, 0.0)     # a masked point's value is never used
    ds = fit_batch(model, x, Y, params=params, weights=weights, **kwargs)
    return StackFit(ds, params, weights)
