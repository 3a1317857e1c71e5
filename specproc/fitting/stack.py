"""One model fitted to a stack of spectra: the batch engine's result for techniques, by row or by column.

:func:`fit_stack` runs :func:`~specproc.fitting.batch.fit_batch` and returns a :class:`StackFit`:
the parameter values (expressions such as tied components evaluated by the engine), standard errors,
the parameters that ended at a bound (their values are limits and get no error bar), the fit
statistics and the fit warnings every Result carries. A technique reads it

* by column (:attr:`StackFit.values`, :attr:`~StackFit.errors`, :meth:`~StackFit.stderr`,
  :meth:`~StackFit.at_bound`, :attr:`~StackFit.stats`, :attr:`~StackFit.finite`): whole-stack numpy
  arrays, for stacks of hundreds of spectra and for summaries over the stack (XPS levels, XRD patterns,
  NMR spectra);
* by row (:meth:`StackFit.row` -> :class:`StackRow`): plain dicts of one spectrum (FTIR).

It never reads the Dataset by parameter name, clips to bounds, finds bound parameters or counts the
unmasked points again.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["StackFit", "StackRow", "fit_stack"]

#: statistics copied from the batch Dataset when present
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
        What ``fit_batch`` returned (its stack dims flattened to one, in C order).
    params : lmfit.Parameters
        The parameters (bounds, ``vary``, ``expr``) of the fit.
    weights : array (n, m) or (m,), optional
        The fit's weights; a zero weight is a masked point (not counted as data).
    skip_bounds : iterable of str
        Free parameters whose bounds are not limits of a measurement (an intensity ratio on 0,
        a satellite amplitude that may vanish): never reported as at a bound.
    rtol : float
        The bound rule's tolerance (:func:`~specproc.fitting.uncertainty.on_bound`: within ``rtol``
        of the range ``max - min``).

    Attributes
    ----------
    values : dict name -> array (n,)
        Every parameter of the Dataset (expressions evaluated by the engine), as the engine left it
        (a value a hair outside its bounds is reported at the bound, not moved).
    errors : dict name -> array (n,)
        Standard errors as computed (NaN when undetermined; see :meth:`stderr` for honest ones).
    stats : dict key -> array (n,)
        ``r2``, ``redchi``, ``chisqr``, ``nfev``, ``noise_sd``, ``redchi_noise`` (those present).
    success : array (n,) of bool
    free : list of str
        The fitted (varied, not tied) parameters.
    bounds : dict name -> (min, max)
        Of the free parameters.
    ndata : array (n,) of int or None
        Unmasked points per row (None without weights: every point).
    method, timings
        The engine's method and timings (s).
    """

    def __init__(self, ds, params, weights=None, *, skip_bounds=(), rtol: float = 1e-4):
        self.ds = ds
        self.params = params
        self.free = [n for n in params if params[n].vary and not params[n].expr]
        self.bounds = {n: (params[n].min, params[n].max) for n in self.free}
        self.values = {n: np.asarray(ds[n].values, float).reshape(-1) for n in params if n in ds}
        self.errors = {n: np.asarray(ds[n + "_stderr"].values, float).reshape(-1)
                       for n in params if n + "_stderr" in ds}
        self.stats = {k: np.asarray(ds[k].values).reshape(-1) for k in _STATS if k in ds}
        self.success = np.asarray(ds["success"].values, bool).reshape(-1)
        n = self.success.size
        self.ndata = None
        if weights is not None:
            W = np.asarray(weights, float)
            self.ndata = np.count_nonzero(np.broadcast_to(W, (n, W.shape[-1])), axis=-1)
        self.method = str(ds.attrs.get("method"))
        self.timings = dict(ds.attrs.get("timings") or {})
        self.rtol = rtol
        self._skip = frozenset(skip_bounds)
        self._bound: dict | None = None

    def __len__(self) -> int:
        return int(self.success.size)

    # ------------------------------------------------------------------ columns
    @property
    def finite(self) -> np.ndarray:
        """(n,) True where every fitted parameter is finite (a masked or failed row is not)."""
        ok = np.ones(len(self), bool)
        for nm in self.free:
            ok &= np.isfinite(self.values[nm]) if nm in self.values else False
        return ok

    @property
    def converged(self) -> np.ndarray:
        """(n,) converged with every fitted parameter finite."""
        return self.success & self.finite

    def _bounds_hit(self) -> dict:
        if self._bound is None:
            from .uncertainty import on_bound

            self._bound = {nm: on_bound(self.values[nm], lo, hi, self.rtol)
                           for nm, (lo, hi) in self.bounds.items() if nm not in self._skip and nm in self.values}
        return self._bound

    def at_bound(self, name: str | None = None) -> np.ndarray:
        """(n,) True where free parameter ``name`` ended at a bound (False for a tied or skipped one);
        without a name, where any free parameter did."""
        hits = self._bounds_hit()
        if name is not None:
            h = hits.get(name)
            return np.zeros(len(self), bool) if h is None else h.copy()
        out = np.zeros(len(self), bool)
        for h in hits.values():
            out |= h
        return out

    def stderr(self, name: str) -> np.ndarray:
        """(n,) standard errors of ``name``, NaN where it is at a bound (a limit, not a measurement) or
        undetermined; NaN everywhere for a parameter without errors."""
        e = self.errors.get(name)
        if e is None:
            return np.full(len(self), np.nan)
        return np.where(self.at_bound(name), np.nan, e)

    def bounded(self, k: int) -> list[str]:
        """The free parameters of row ``k`` at a bound (parameter order)."""
        return [nm for nm, h in self._bounds_hit().items() if h[k]]

    # ------------------------------------------------------------------ rows
    def ok(self, k: int) -> bool:
        """Row ``k`` converged with every fitted parameter finite."""
        return bool(self.success[k]) and all(np.isfinite(self.values[n][k]) for n in self.free if n in self.values)

    def row(self, k: int, *, noise: float | None = None, rms: float | None = None) -> StackRow:
        """Row ``k``: values, errors, the bound parameters named, statistics, and the fit warnings (bounds,
        convergence, r², misfit against ``noise`` when given; ``rms`` the residual RMS, default
        ``sqrt(redchi)``, which is the RMS of the unmasked points for 0/1 weights)."""
        from .uncertainty import fit_warnings

        vals = {n: float(v[k]) for n, v in self.values.items()}
        errs = {n: float(v[k]) for n, v in self.errors.items()}
        bounded = self.bounded(k)
        missing = [n for n in self.params if n not in vals]
        if missing:   # expressions the engine did not return: lmfit evaluates them from this row
            p = self.params   # one Parameters object reused: lmfit copies cost ~20 ms each
            for n in self.free:
                if n in vals:
                    p[n].value = float(np.clip(vals[n], p[n].min, p[n].max))
            vals.update({n: float(p[n].value) for n in missing})
        stats = {key: (int(v[k]) if key == "nfev" else float(v[k])) for key, v in self.stats.items()}
        stats.update(success=bool(self.success[k]), method=self.method, nvarys=len(self.free))
        if self.ndata is not None:
            stats["ndata"] = int(self.ndata[k])
        if rms is None and stats.get("redchi") is not None and stats["redchi"] >= 0:
            rms = float(np.sqrt(stats["redchi"]))
        warns = fit_warnings({"r2": stats.get("r2"), "success": stats["success"]}, bounded, noise=noise, rms=rms,
                             values=vals)
        return StackRow(k, vals, errs, bounded, stats, stats["success"], warns)


def fit_stack(model, x, Y, params=None, *, weights=None, skip_bounds=(), rtol: float = 1e-4, **kwargs) -> StackFit:
    """Fit ``model`` (lmfit model or ModelSpec) to every row of ``Y`` (n, m) on the batch engine.

    ``params`` (lmfit Parameters) may be omitted for a ModelSpec: then ``model.to_lmfit(x, mean of the
    finite rows)``, the engine's own default start; ``kwargs`` go to
    :func:`~specproc.fitting.batch.fit_batch`; masked points (weight 0) are no data; ``skip_bounds`` and
    ``rtol`` as :class:`StackFit`. -> :class:`StackFit`.
    """
    from ..core.errors import ParameterError
    from .batch import default_params, fit_batch
    from .models import ModelSpec

    Y = np.asarray(Y, float)
    if weights is not None:
        W = np.asarray(weights, float)
        if not (W > 0).all():
            Y = np.where(np.broadcast_to(W, Y.shape) > 0, Y, 0.0)     # a masked point's value is never used
    if params is None:   # the bounds are read from the parameters: the engine's default start, made here
        if not isinstance(model, ModelSpec):
            raise ParameterError("fit_stack: give the lmfit Parameters of an lmfit model")
        params = default_params(model, x, Y)
    ds = fit_batch(model, x, Y, params=params, weights=weights, **kwargs)
    return StackFit(ds, params, weights, skip_bounds=skip_bounds, rtol=rtol)
