"""One spectrum, one fit: :func:`fit_spec` (batch-engine start, lmfit confirmation, full covariance,
bound and quality checks) returns a :class:`FitOutcome`; :func:`fit_checks` are the checks every
fit gets (starts that moved, no signal near a start, unexplained signal in the residual);
:func:`drop_undetected` is the automatic modes' rule for components that are not there.

Above :mod:`specproc.fitting.models` (the specs) and :mod:`specproc.fitting.batch` (the engine),
which never import this module: no import circle.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .lineshapes import REGISTRY
from .models import ModelSpec, Peak, prefix_of, unfreeze_centers, without_uvars


@dataclass
class FitOutcome:
    """What :func:`fit_spec` returns: values, honest errors, checks and the curves."""

    spec: ModelSpec
    x: np.ndarray
    y: np.ndarray
    params: object                      # lmfit Parameters at the optimum (constraints applied)
    var_names: list
    covar: np.ndarray | None
    best_fit: np.ndarray
    components: dict                    # lmfit prefix -> curve (satellites separate)
    stats: dict
    warnings: list = field(default_factory=list)
    bounded: list = field(default_factory=list)   # varied parameters at a bound
    model: object = None
    noise: float | None = None
    values_fn: object = None            # theta -> all parameter values (compiled affine map), or None
    undetected: list = field(default_factory=list)  # given peaks with no signal near their start

    @property
    def values(self) -> dict:
        return self.params.valuesdict()

    @property
    def stderr(self) -> dict:
        """Standard errors by parameter name; None at a bound or when undetermined."""
        out = {}
        for n, p in self.params.items():
            se = p.stderr
            out[n] = None if (n in self.bounded or se is None or not np.isfinite(se)) else float(se)
        return out

    @property
    def residual(self) -> np.ndarray:
        return self.y - self.best_fit

    def derived(self, fn):
        """Derived quantities ``fn(values) -> array`` with errors from the full covariance."""
        from .uncertainty import propagate

        if self.values_fn is not None:
            try:
                return propagate(fn, self.params, self.var_names, self.covar, values_fn=self.values_fn)
            except KeyError:
                pass
        return propagate(fn, self.params, self.var_names, self.covar)

    def peak_table(self):
        """Tidy per-peak table (satellites credited to their peak); errors None at a bound."""
        import pandas as pd

        from .lineshapes import area_of, fwhm_of

        spec, groups = self.spec, self.spec.groups()
        names = [p.name for p in spec.peaks]
        n = len(names)

        counted = np.array([p.name not in self.undetected for p in spec.peaks])

        def fn(v):
            areas = np.array([sum(area_of(p.shape, v, g) for g in groups[p.name]) for p in spec.peaks])
            tot = areas[counted].sum()       # fractions of the detected peaks
            fr = np.where(counted, areas / tot, np.nan) if tot > 0 else np.full(n, np.nan)
            cen = [v[prefix_of(nm) + "center"] for nm in names]
            fw = [fwhm_of(p.shape, v, prefix_of(p.name)) for p in spec.peaks]
            return np.concatenate([cen, fw, areas, fr])

        vals, errs, _ = self.derived(fn)
        rows = []
        for i, p in enumerate(spec.peaks):
            pre = prefix_of(p.name)
            own = [k for k in self.bounded if k.startswith(pre) or any(k.startswith(g) for g in groups[p.name])]
            curve = self.components.get(pre)
            height = float(np.max(curve)) if curve is not None and np.size(curve) else float("nan")
            xs = self.x[int(np.argmax(curve))] if curve is not None and np.size(curve) > 1 else float("nan")

            def e(v, name):
                return None if (any(k.endswith(name) for k in own) or not np.isfinite(v)) else float(v)

            rows.append({"name": p.name, "shape": p.shape, "center": vals[i], "center_stderr": e(errs[i], "center"),
                         "fwhm": vals[n + i], "fwhm_stderr": e(errs[n + i], "sigma") if p.shape != "gl-product"
                         and p.shape != "gl-sum" else e(errs[n + i], "fwhm"),
                         "height": height, "x_at_max": float(xs),
                         "area": vals[2 * n + i], "area_stderr": e(errs[2 * n + i], "amplitude"),
                         "area_fraction": vals[3 * n + i],
                         "area_fraction_stderr": None if own or not np.isfinite(errs[3 * n + i]) else float(errs[3 * n + i]),
                         "n_satellites": len(groups[p.name]) - 1, "at_bound": ",".join(own),
                         "detected": bool(counted[i])})
            if not counted[i]:      # no signal near its start: not a result (fit_checks warned); the
                # centre and width stay as fitted (where it went), the intensities are NaN
                rows[-1].update({k: float("nan") for k in ("height", "area", "area_fraction")})
                rows[-1].update({k: None for k in ("center_stderr", "fwhm_stderr", "area_stderr",
                                                   "area_fraction_stderr")})
        return pd.DataFrame(rows)

    def insignificant(self, names=None, k_area: float = 2.0, k_height: float = 3.0) -> list[str]:
        """Peaks that are not detected: see :func:`not_significant` (on :meth:`peak_table`)."""
        return not_significant(self.peak_table().to_dict(orient="records"), self.noise, names=names,
                               k_area=k_area, k_height=k_height)


def not_significant(rows, noise: float | None, names=None, k_area: float = 2.0, k_height: float = 3.0) -> list[str]:
    """Names of table rows that are no detection: what an automatic mode must not report.

    A row is not significant when its height is below ``k_height`` noise SDs, its area is not
    positive, or ``|area| < k_area`` standard errors (an area without a standard error — a
    parameter at a bound — is judged on its height and sign alone).

    Parameters
    ----------
    rows : list of dict
        ``name``, ``area``, ``area_stderr`` and ``height`` per component (e.g.
        :meth:`FitOutcome.peak_table` records).
    noise : float or None
        Noise SD of the data (None: the height test is skipped).
    names : iterable of str, optional
        Only these rows are judged.
    """
    out = []
    for r in rows:
        if names is not None and r["name"] not in names:
            continue
        a, e, h = r.get("area"), r.get("area_stderr"), r.get("height")
        a = float("nan") if a is None else float(a)
        weak = not (np.isfinite(a) and a > 0)
        if e is not None and np.isfinite(e) and abs(a) < k_area * e:
            weak = True
        if noise and h is not None and not (float(h) >= k_height * noise):
            weak = True
        if weak:
            out.append(r["name"])
    return out


def drop_undetected(fit: "FitOutcome", refit, names=None, *, unit: str = "", k_area: float = 2.0,
                    k_height: float = 3.0, where=None):
    """An automatic mode's fit without the candidates that are no detection.

    Candidates judged not significant by :func:`not_significant` (area within ``k_area``
    standard errors of 0, or height below ``k_height`` noise SDs) are removed and the rest
    refitted until none is left: every candidate without signal (height below the threshold or
    no positive area) at once, else only the one with the smallest area / standard error (the
    area errors of overlapping candidates are inflated by their correlation, which removing one
    of them lifts).

    Parameters
    ----------
    fit : FitOutcome
    refit : callable
        ``refit(fit, names_to_drop) -> FitOutcome`` without those peaks.
    names : iterable of str, optional
        The peaks that are candidates (others, e.g. modelled atmosphere, are never dropped).
    unit : str
        Axis unit of the positions in the warning.
    where : str, optional
        The input file, for the error.

    Returns
    -------
    (FitOutcome, list of str)
        The final fit and its warning (empty when nothing was dropped).

    Raises
    ------
    ProcessingError
        When no candidate is left.
    """
    from ..core.errors import ProcessingError

    u = f" {unit}" if unit else ""
    dropped = []
    while True:
        rows = [r for r in fit.peak_table().to_dict(orient="records") if names is None or r["name"] in names]
        weak = not_significant(rows, fit.noise, k_area=k_area, k_height=k_height)
        if not weak:
            break
        drop = _to_drop([r for r in rows if r["name"] in weak], fit.noise, k_height)
        dropped += [f"{fit.values[prefix_of(n) + 'center']:.4g}{u}" for n in drop]
        if len(drop) == len(rows):
            raise ProcessingError(f"no component detected above the noise ({len(dropped)} candidate(s) with an area "
                                  f"within {k_area:g} standard errors of 0 or a height below {k_height:g}x the noise)",
                                  where)
        fit = refit(fit, drop)
    if not dropped:
        return fit, []
    return fit, [f"{len(dropped)} candidate component(s) not detected above the noise (area within {k_area:g} standard "
                 f"errors of 0 or height below {k_height:g}x the noise), left out of the result: {', '.join(dropped)}"]


def _to_drop(weak_rows, noise, k_height) -> list[str]:
    """Of the not-significant rows: all without signal, else the one of smallest area / stderr."""
    def empty(r):
        a, h = r.get("area"), r.get("height")
        return not (a is not None and np.isfinite(a) and a > 0) or bool(
            noise and not (h is not None and float(h) >= k_height * noise))

    gone = [r["name"] for r in weak_rows if empty(r)]
    if gone:
        return gone
    return [min(weak_rows, key=lambda r: abs(r["area"]) / r["area_stderr"])["name"]]


# ============================================================================ after-fit checks
def peak_curves(spec: ModelSpec, x, values: dict) -> dict:
    """``{lmfit prefix: curve}`` of every peak and satellite of ``spec`` and ``"bl_"`` (the
    baseline) at parameter ``values`` (plain numbers: the batch paths have no lmfit result)."""
    from .components import gl_product, gl_sum
    from .lineshapes import FUNCTIONS

    x = np.asarray(x, float)
    out = {}
    for p in spec.peaks:
        ls = REGISTRY[p.shape]
        for pre in spec.groups()[p.name]:
            kw = {n: float(values[pre + n]) for n in ls.params}
            if p.shape in FUNCTIONS:
                out[pre] = np.asarray(FUNCTIONS[p.shape](x, **kw), float)
            elif p.shape in ("gl-product", "gl-sum"):
                out[pre] = np.asarray((gl_product if p.shape == "gl-product" else gl_sum)(x, **kw), float)
            else:
                import lmfit

                out[pre] = np.asarray(lmfit.lineshapes.doniach(x, **kw), float)
    deg = {"none": None, "constant": 0, "linear": 1, "quadratic": 2}[spec.baseline]
    if deg is not None:
        out["bl_"] = sum(float(values.get(f"bl_c{j}", 0.0)) * x ** j for j in range(deg + 1)) * np.ones_like(x)
    return out


def fit_checks(spec: ModelSpec, x, y, best_fit, values: dict, noise: float, *, curves: dict | None = None,
               weights=None, unit: str = "") -> tuple[list[str], list[str]]:
    """The after-fit checks of every fit (single and stacked): warnings and undetected peaks.

    1. **Moved starts**: a peak the user placed (``Peak.given``) whose fitted centre ended more
       than ``max(FWHM, given_window)`` from it, or past the start of a separate neighbouring
       peak (:func:`~specproc.fitting.uncertainty.moved_from_start`).
    2. **No signal near a start**: the data minus the baseline and the other components hold no
       point above 4 noise SDs within 3 FWHM of the given start
       (:func:`~specproc.fitting.uncertainty.signal_near`): a warning, and the peak is returned
       as undetected (its values are no result).
    3. **Unexplained signal**: residual features above 5 noise SDs over at least half the
       narrowest FWHM (>= 3 points) (:func:`~specproc.fitting.uncertainty.unexplained_signal`).

    Parameters
    ----------
    spec : ModelSpec
    x, y, best_fit : ndarray (n,)
        The fitted points, the data and the model there.
    values : dict
        Parameter values (lmfit names; expressions evaluated).
    noise : float
        Noise SD of ``y`` (unweighted fits).
    curves : dict, optional
        ``{prefix: curve}`` of the components (default :func:`peak_curves`).
    weights : ndarray, optional
        The fit's weights: residuals are compared in weighted units, on their own robust SD.
    unit : str
        Axis unit for the sentences.

    Returns
    -------
    (warnings, undetected) : (list of str, list of str)
    """
    from .lineshapes import fwhm_of
    from .noise import noise_sigma
    from .uncertainty import min_feature_points, unexplained_signal, unexplained_warning

    x, y, best = (np.asarray(a, float) for a in (x, y, best_fit))
    curves = peak_curves(spec, x, values) if curves is None else curves
    fw = {p.name: float(fwhm_of(p.shape, values, prefix_of(p.name))) for p in spec.peaks}
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    resid = (y - best) * w
    sigma = float(noise) if weights is None and noise else noise_sigma(resid)
    dx = float(np.median(np.abs(np.diff(x)))) if x.size > 1 else 1.0
    warns, undetected = _start_checks(spec, x, dx, resid, w, curves, values, fw, sigma, unit)
    model = (best - np.broadcast_to(np.asarray(curves.get("bl_", 0.0), float), x.shape)) * w
    feats = unexplained_signal(x, resid, sigma, min_feature_points(x, fw.values(), dx=dx), model=model)
    if feats:
        warns.append(unexplained_warning(feats, unit))
    return warns, undetected


def _start_checks(spec, x, dx, resid, w, curves, values, fw, sigma, unit):
    """Checks 1 and 2 of :func:`fit_checks` for the peaks with a given start (``dx``: median spacing)."""
    from .uncertainty import SIGNAL_K, SIGNAL_REACH, moved_from_start, signal_near

    if not any(p.given is not None for p in spec.peaks):
        return [], []
    groups = spec.groups()
    u = f" {unit}" if unit else ""
    start = {q.name: (q.given if q.given is not None else q.center) for q in spec.peaks}
    warns, undetected = [], []
    for p in spec.peaks:
        if p.given is None:
            continue
        neigh = {q.name: start[q.name] for q in spec.peaks
                 if q is not p and abs(start[q.name] - p.given) > max(fw[p.name], fw[q.name])}
        moved = moved_from_start(p.name, p.given, float(values[prefix_of(p.name) + "center"]), fw[p.name],
                                 p.given_window, neigh, unit)
        # the data this peak could explain: residual + its own curves (baseline and others removed)
        own = sum((np.broadcast_to(np.asarray(curves[g], float), x.shape) for g in groups[p.name] if g in curves),
                  np.zeros_like(x))
        widths = [f for f in (fw[p.name], p.fwhm) if f is not None and np.isfinite(f) and f > 0]
        if widths:
            reach = SIGNAL_REACH * max(widths)
            # smoothing over half the narrower width keeps a line of that width, drops lone spikes
            if not signal_near(x, resid + own * w, p.given, reach, sigma, window=max(5, int(0.5 * min(widths) / dx))):
                warns.append(f"no signal near {p.given:g}{u}, where {p.name} was given: no significant signal "
                             f"within {reach:.3g}{u} (no point above {SIGNAL_K:g}x the noise); {p.name} is not "
                             f"detected and not reported as a result")
                undetected.append(p.name)
        if moved:
            warns.append(moved)
    return warns, undetected


#: engine budget of :func:`fit_spec`: ``clip(25 * nvarys, 200, 2000)`` LM iterations
ENGINE_ITER_PER_PARAM, ENGINE_ITER_MIN, ENGINE_ITER_MAX = 25, 200, 2000


def engine_budget(nvarys: int) -> int:
    """Default LM iteration budget of the batch engine in :func:`fit_spec` for ``nvarys`` free parameters.

    Crowded windows (an XRD cluster of 8-10 reflections with Kα2 satellites, ~40 parameters) need
    several hundred iterations from picked starts; a fixed 200 left them to lmfit's much slower
    finite-difference search.
    """
    return int(min(ENGINE_ITER_MAX, max(ENGINE_ITER_MIN, ENGINE_ITER_PER_PARAM * int(nvarys))))


def _polish(model, params, x, y, weights=None, max_iter=200):
    """Run the batch engine (analytic Jacobians) on one spectrum from ``params``.

    lmfit's ``leastsq`` differentiates numerically (``nvarys + 1`` model evaluations per
    iteration); a stack of one through the batch engine finds the same optimum much faster.
    ``params`` is not changed.

    Returns
    -------
    ds : xarray.Dataset or None
        The engine's result: values at its optimum, or where the budget ran out when
        ``ds["success"]`` is False. None when the model does not compile (lmfit's own search then).
    bm : BatchModel or None
        The compiled model (reused for the affine map of the constraints and the restart test).
    """
    from ..core.errors import SpecprocError
    from .batch import NotBatchable, fit_batch_compiled

    try:
        ds, bm = fit_batch_compiled(model, x, np.asarray(y, float)[None, :], params=params,
                                     method="batched-lm", n_jobs=1, max_iter=max_iter,
                                     weights=None if weights is None else np.asarray(weights, float)[None, :],
                                     expr_errors=False, noise_stats=False)
    except (NotBatchable, SpecprocError, ValueError, TypeError):
        return None, None
    return ds, bm


def _chisqr(bm, theta, phi, x, y, weights):
    """chi² of the compiled model at free parameters ``theta`` (weighted like lmfit)."""
    from ._batch_kernels import eval_components

    P = bm.full(np.asarray(theta, float)[None, :], np.asarray(phi, float)[None, :])
    r = y - eval_components(bm.kinds, bm.offsets, bm.npars, x, P, jac=False)[0][0]
    if weights is not None:
        r = r * weights
    c = float(np.sum(r * r))
    return c if np.isfinite(c) else np.inf


def _restart_point(params, ds, bm, x, y, weights):
    """Move ``params`` to the engine's end point if lmfit would start there with a lower chi² (in place).

    The end point of a run that stopped short (budget spent) is, by construction of LM, no worse
    than the starts; it is used when its chi² (after the moves below) is lower. lmfit's bounded
    transforms have zero slope on a bound, so a start exactly there is frozen: a parameter with
    two finite bounds is kept 1e-4 of its range inside them, one on a one-sided bound is moved
    1e-4 of its original start's distance from that bound inside (an amplitude the engine took to
    0 stays ~0: restoring its start value on a peak whose width the engine shrank gave chi² 1e3x
    the end point's). Returns True when ``params`` moved.
    """
    theta0 = np.array([float(params[n].value) for n in bm.free])
    theta = theta0.copy()
    for j, name in enumerate(bm.free):
        v = float(ds[name].values[0]) if name in ds else np.nan
        if not np.isfinite(v):
            return False
        lo, hi = params[name].min, params[name].max
        if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
            v = float(np.clip(v, lo + 1e-4 * (hi - lo), hi - 1e-4 * (hi - lo)))
        elif v <= lo:
            v = lo + 1e-4 * (theta0[j] - lo) if theta0[j] > lo else theta0[j]
        elif v >= hi:
            v = hi - 1e-4 * (hi - theta0[j]) if theta0[j] < hi else theta0[j]
        theta[j] = v
    phi = np.array([float(params[n].value) for n in bm.fixed])
    if not _chisqr(bm, theta, phi, x, y, weights) < _chisqr(bm, theta0, phi, x, y, weights):
        return False
    for name, v in zip(bm.free, theta):
        params[name].set(value=float(v))
    unfreeze_centers(params)
    return True


class _Solved:
    """What fit_spec reads from an lmfit ModelResult, for an optimum found by the batch engine."""

    def __init__(self, model, params, x, y, weights, nfev, success=True):
        p = without_uvars(params)
        p.update_constraints()
        self.params, self._model, self._x = p, model, x
        self.best_fit = np.asarray(model.eval(p, x=x), float)
        r = self.best_fit - y
        if weights is not None:
            r = r * weights
        self.var_names = [n for n, q in p.items() if q.vary and not q.expr]
        self.ndata, self.nvarys = int(np.size(y)), len(self.var_names)
        self.chisqr = float(np.sum(r * r))
        nfree = self.ndata - self.nvarys
        self.redchi = self.chisqr / nfree if nfree > 0 else float("nan")
        lik = self.ndata * np.log(max(self.chisqr, 1e-300) / self.ndata)
        self.aic = float(lik + 2 * self.nvarys)
        self.bic = float(lik + np.log(self.ndata) * self.nvarys)
        self.nfev, self.success = int(nfev), bool(success)

    def eval_components(self, x=None):
        return self._model.eval_components(params=self.params, x=self._x if x is None else x)


def fit_spec(spec: ModelSpec, x, y, *, weights=None, noise: float | None = None, polish: bool = True,
             max_nfev: int | None = None, where=None, confirm: bool = False,
             engine_iter: int | None = None, unit: str = "") -> FitOutcome:
    """Fit one spectrum with a :class:`ModelSpec` — the single-spectrum path of every technique.

    The batch engine finds the optimum (analytic Jacobians) within ``engine_iter`` iterations;
    lmfit searches only when the engine cannot compile the model or did not converge (or
    ``confirm=True``), starting from the engine's end point when that has a lower chi² than the
    starts (:func:`_restart_point`), else from the starts. The covariance is computed robustly
    (:func:`~specproc.fitting.uncertainty.covariance`); parameters on a bound lose their standard
    error and become warnings; a non-converged, poor (r² < 0.9) or structured (residual RMS > 3x
    ``noise``) fit is a warning.

    Parameters
    ----------
    spec : ModelSpec
    x, y : array_like (n,)
    weights : array_like, optional
        lmfit weights (1/sigma).
    noise : float, optional
        Noise SD of ``y`` (default: :func:`~specproc.fitting.noise.noise_sigma`).
    polish : bool
        Run the batch engine first (False: lmfit from the starts).
    max_nfev : int, optional
        lmfit's budget of model evaluations (default ``200 * (nvarys + 1)``).
    confirm : bool
        Let lmfit confirm a converged engine optimum (starting there).
    engine_iter : int, optional
        LM iteration budget of the engine (default :func:`engine_budget`: ``25 * nvarys``
        within 200..2000).
    unit : str
        Axis unit in the warnings of :func:`fit_checks` (moved starts, no signal near a start,
        unexplained signal), which every fit goes through.

    Returns
    -------
    FitOutcome
        ``stats`` says how the optimum was found: ``optimizer`` is ``"engine"`` (the engine
        converged), ``"engine+lmfit"`` (lmfit from the engine's end point or, with ``confirm``,
        its optimum), ``"engine-end"`` (the engine stopped short and lmfit, stopped by
        ``max_nfev``, did not improve on its end point, which is reported, not converged) or
        ``"lmfit"`` (lmfit from the starts); ``engine_converged`` (None when the engine did not
        run), ``engine_iter`` (its budget) and ``engine_nfev``.
    """
    from ..core.errors import FitError
    from .noise import noise_sigma
    from .uncertainty import at_bound, covariance, fit_warnings, r_squared

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise FitError(f"x and y must be 1D of one length, got {x.shape} and {y.shape}", where)
    good = np.isfinite(x) & np.isfinite(y)
    if weights is not None:
        weights = np.asarray(weights, float)
        good &= np.isfinite(weights)
    if good.sum() < 4:
        raise FitError("fewer than 4 finite points to fit", where)
    x, y = x[good], y[good]
    weights = None if weights is None else weights[good]
    model, params = spec.to_lmfit(x, y)
    nvarys = sum(p.vary and not p.expr for p in params.values())
    if x.size <= nvarys:
        raise FitError(f"{x.size} points cannot determine {nvarys} parameters", where)
    budget = int(engine_iter) if engine_iter is not None else engine_budget(nvarys)
    if budget < 1:
        raise FitError(f"engine_iter must be >= 1, got {engine_iter}", where)
    ds, bm = _polish(model, params, x, y, weights, max_iter=budget) if polish else (None, None)
    converged = ds is not None and bool(ds["success"].values[0])
    engine_nfev = int(ds["nfev"].values[0]) if ds is not None else 0
    optimizer = "lmfit"
    if converged:
        for name, par in params.items():
            if par.vary and not par.expr and name in ds:
                v = float(ds[name].values[0])
                if np.isfinite(v):
                    par.set(value=float(np.clip(v, par.min, par.max)))
        optimizer = "engine+lmfit" if confirm else "engine"
    elif ds is not None and _restart_point(params, ds, bm, x, y, weights):
        optimizer = "engine+lmfit"
    else:
        ds = None  # a stopped-short engine result that does not start better than the starts is discarded
    values_fn = None
    if converged and not confirm:
        # the engine converged: its optimum is the least-squares optimum lmfit would confirm
        # (lmfit's numerical-Jacobian iterations cost minutes for models with dozens of satellites)
        res = _Solved(model, params, x, y, weights, int(ds["nfev"].values[0]))
        values_fn = _affine_values(model, res.params, res.var_names, bm)
    else:
        try:
            # numpy's floating-point warnings of trial points (overflow, invalid) only: np.errstate is
            # per thread (a context variable); warnings.catch_warnings would swap the process-wide
            # filters under other threads' fits
            with np.errstate(all="ignore"):
                res = model.fit(y, without_uvars(params), x=x, weights=weights, nan_policy="raise",
                                max_nfev=max_nfev or 200 * (nvarys + 1))
        except Exception as exc:
            raise FitError(f"fit failed: {type(exc).__name__}: {exc}", where) from None
        if optimizer == "engine+lmfit" and getattr(res, "aborted", False):
            # lmfit stopped by max_nfev returns its last *trial* point, not its best: never report a
            # point worse than the engine's, where lmfit started
            start = _Solved(model, params, x, y, weights, int(res.nfev), success=converged)
            if not res.chisqr <= start.chisqr:
                res, optimizer = start, "engine" if converged else "engine-end"
    p = res.params
    p.update_constraints()
    bounded = at_bound(p, skip={n for n in p if any(n.startswith(sp) for sp in spec.satellite_prefixes())
                                and n.endswith(("amplitude", "height"))})
    cov = None
    if converged and not confirm and "covar" in ds and list(ds.attrs.get("free", [])) == list(res.var_names):
        cov = np.asarray(ds["covar"].values, float)          # the engine's analytic-Jacobian covariance
        if not (np.all(np.isfinite(np.diag(cov))) and np.all(np.diag(cov) >= 0)):
            cov = None
    if cov is None:
        cov = covariance(model, p, x, res.var_names, res.redchi, weights)
    for j, name in enumerate(res.var_names):
        p[name].stderr = float(np.sqrt(cov[j, j])) if cov is not None else None
    best = np.asarray(res.best_fit, float)
    nz = noise if noise is not None else noise_sigma(y)
    stats = {"r2": r_squared(y, best), "redchi": float(res.redchi), "chisqr": float(res.chisqr),
             "aic": float(res.aic), "bic": float(res.bic), "nfev": int(res.nfev), "success": bool(res.success),
             "ndata": int(res.ndata), "nvarys": int(res.nvarys), "optimizer": optimizer,
             "engine_converged": bool(converged) if bm is not None else None,
             "engine_iter": budget if bm is not None else 0,
             "engine_nfev": engine_nfev}
    stats.update(_noise_stats(y, best, weights, int(res.nvarys)))
    warns = fit_warnings(stats, bounded, residual=y - best if weights is None else None, noise=nz, params=p)
    comps = {k: np.broadcast_to(np.asarray(v, float), x.shape) for k, v in res.eval_components(x=x).items()}
    checks, undetected = fit_checks(spec, x, y, best, p.valuesdict(), nz, curves=comps, weights=weights, unit=unit)
    return FitOutcome(spec=spec, x=x, y=y, params=p, var_names=list(res.var_names), covar=cov, best_fit=best,
                      components=comps, stats=stats, warnings=warns + checks, bounded=bounded, model=model, noise=nz,
                      values_fn=values_fn, undetected=undetected)


def _noise_stats(y, best, weights, nvarys: int) -> dict:
    """``noise_sd`` and ``redchi_noise``: χ²/ν with the noise estimate as σ (≈ 1 for a fit down to the
    noise, whatever the data's scale; lmfit's unweighted ``redchi`` is a residual variance in data
    units², kept for the callers that use it as one).

    σ is the robust noise SD of the residual (:func:`specproc.fitting.noise.noise_sigma`, "auto": MAD of
    differences and sigma-clipped MAD): a misfit's localised features are clipped and count as misfit,
    not noise, and correlated noise is measured as it is. Measured on synthetic pseudo-Voigt pairs
    (1,500 points): 0.97 ± 0.04 with white noise, 1.06 ± 0.12 with correlated noise, 61 with a peak left
    out. (The noise of the data themselves overestimates σ near lines: 0.61.) Weights that are a 0/1
    mask select the points; other weights are taken as 1/σ, and the weighted χ²/ν is already normalised.
    """
    from .noise import noise_sigma

    if weights is not None and not np.all((weights == 0) | (weights == 1)):
        r = (y - best) * weights
        nu = int(np.count_nonzero(weights)) - nvarys
        return {"noise_sd": None, "redchi_noise": float(np.sum(r * r) / nu) if nu > 0 else None}
    mask = np.ones(y.shape, bool) if weights is None else weights > 0
    r = (y - best)[mask]
    nu = int(mask.sum()) - nvarys
    sd = float(noise_sigma(r)) if r.size >= 3 else None
    ok = nu > 0 and sd is not None and np.isfinite(sd) and sd > 1e-300
    return {"noise_sd": sd if ok else None, "redchi_noise": float(np.sum(r * r) / (nu * sd * sd)) if ok else None}


def _affine_values(model, params, var_names, bm=None):
    """``theta -> {name: value}`` through the batch engine's compiled affine map of the constraints.

    Only the parameters the model functions take (and the independent ones) are in the dict: what
    derived quantities need (areas, FWHM from the registry). ``bm``: the BatchModel the engine
    already compiled from this model and these parameters (else compiled here). None when the
    model does not compile.
    """
    if bm is None:
        try:
            from .batch import NotBatchable, compile_model

            bm = compile_model(model, params)
        except (NotBatchable, Exception):  # any failure: the lmfit-interpreter path stays correct
            return None
    if list(bm.free) != list(var_names):
        return None
    phi = np.array([[float(params[n].value) for n in bm.fixed]])
    # independent parameters only: an expression that is not a model argument (lmfit's derived
    # fwhm/height) is absent, so a derived function that needs one fails (KeyError) and the caller
    # falls back to lmfit's interpreter instead of differentiating a stale value
    base = {n: float(params[n].value) for n in params if not params[n].expr}

    def values(theta):
        P = bm.full(np.asarray(theta, float)[None, :], phi)[0]
        out = dict(base)
        out.update(zip(bm.free, (float(t) for t in theta)))
        out.update(zip(bm.qnames, (float(v) for v in P)))
        return out

    return values
