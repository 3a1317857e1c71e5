"""Uncertainty tools shared by every technique: covariance, propagation, Monte-Carlo, bound checks.

* :func:`covariance` — ``redchi (J^T J)^-1`` over the varied parameters with a central/forward-
  difference Jacobian of the model in the parameters' own units (lmfit's definition; robust for
  parameters sitting at a bound, where lmfit's own estimate is often missing).
* :func:`propagate` — derived quantities (area fractions, ratios, satellite-inclusive areas, FWHM of
  Voigt lines...) with the **full** covariance: ``cov_f = J C J^T`` with a numerical Jacobian of the
  derived function, lmfit constraints re-evaluated at every step.
* :func:`montecarlo` — refits of ``best_fit + residual`` resampled by random circular shifts and
  signs (keeps the correlation of processed-spectrum noise), standard deviation of each quantity.
* :func:`at_bound`, :func:`fit_warnings` — the "never silently wrong" checks every fit goes through.
* :func:`unexplained_signal` — residual features above ``k`` noise SDs that no component explains;
  :func:`signal_near` — is there any signal near a given start; :func:`moved_from_start` — did a
  fitted centre leave the start the user gave.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["covariance", "propagate", "montecarlo", "at_bound", "on_bound", "fit_warnings", "r_squared",
           "unexplained_signal", "unexplained_warning", "min_feature_points", "signal_near", "moved_from_start"]


def r_squared(y, best_fit) -> float:
    y = np.asarray(y, float)
    ss_res = float(np.sum((y - best_fit) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2)) or 1.0
    return 1.0 - ss_res / ss_tot


def covariance(model, params, x, var_names, redchi: float, weights=None):
    """Covariance matrix of the varied parameters, or None when singular / undefined.

    Parameters
    ----------
    model : lmfit.Model
    params : lmfit.Parameters
        Best-fit values (not modified).
    x : ndarray
        Independent variable of the fit.
    var_names : list of str
        Varied parameters (lmfit ``ModelResult.var_names``), in the order of the matrix.
    redchi : float
        Reduced chi-square that scales ``(J^T J)^-1``.
    weights : ndarray, optional
        The fit's weights (residual = weights * (model - data)).
    """
    names = list(var_names)
    if not names or len(x) <= len(names):
        return None
    p = params.copy()
    p.update_constraints()
    f0 = np.asarray(model.eval(p, x=x), float)
    dx = float(np.median(np.abs(np.diff(x)))) if len(x) > 1 else 1.0
    # typical magnitude per kind of parameter (suffix): a parameter sitting at 0 (an intensity on
    # its bound) still gets a step far above round-off
    typical: dict[str, float] = {}
    for name in names:
        suffix = name.rsplit("_", 1)[-1]
        typical[suffix] = max(typical.get(suffix, 0.0), abs(p[name].value))
    J = np.empty((len(x), len(names)))
    for j, name in enumerate(names):
        par = p[name]
        v = par.value
        if name.endswith(("center", "sigma", "gamma", "fwhm")):
            floor = 1e-4 * dx
        elif name.endswith(("fraction", "mixing")):
            floor = 1e-4
        else:
            floor = 1e-6 * typical[name.rsplit("_", 1)[-1]]
        h = max(1e-6 * abs(v), floor, 1e-12)
        step = h if v + h <= par.max else -h      # forward difference, backward at an upper bound
        if v + step < par.min:
            return None
        par.value = v + step
        p.update_constraints()
        J[:, j] = (np.asarray(model.eval(p, x=x), float) - f0) / step
        par.value = v
    if weights is not None:
        J = J * np.asarray(weights, float)[:, None]
    try:
        cov = np.linalg.inv(J.T @ J) * float(redchi)
    except np.linalg.LinAlgError:
        return None
    d = np.diag(cov)
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        return None
    return cov


def propagate(fn, params, var_names, covar, values_fn=None):
    """Derived values, standard errors and covariance through the full parameter covariance.

    Parameters
    ----------
    fn : callable
        ``fn(values: dict) -> array`` of derived quantities from parameter values
        (``params.valuesdict()``, constraints applied).
    params : lmfit.Parameters
    var_names : list of str
        Varied parameters, in the order of ``covar``.
    covar : ndarray or None
        Their covariance; None gives NaN errors.
    values_fn : callable, optional
        ``values_fn(theta) -> dict`` of every parameter value for the varied values ``theta`` (in
        ``var_names`` order); a compiled affine map (the batch engine's) instead of lmfit's constraint
        interpreter, which costs seconds for models with dozens of tied satellites.

    Returns
    -------
    values, stderrs, cov : ndarray
    """
    if values_fn is not None:
        theta0 = np.array([params[n].value for n in var_names], float)
        f0 = np.asarray(fn(values_fn(theta0)), float)
        if covar is None or not len(var_names):
            return f0, np.full(f0.shape, np.nan), np.full((f0.size, f0.size), np.nan)
        J = np.zeros((f0.size, len(var_names)))
        for j in range(len(var_names)):
            v = theta0[j]
            sd = math.sqrt(abs(covar[j, j])) if np.isfinite(covar[j, j]) else 0.0
            h = max(1e-3 * sd, 1e-7 * max(abs(v), 1e-12), 1e-12)
            tp, tm = theta0.copy(), theta0.copy()
            tp[j] += h
            tm[j] -= h
            J[:, j] = (np.asarray(fn(values_fn(tp)), float) - np.asarray(fn(values_fn(tm)), float)) / (2 * h)
        cov = J @ covar @ J.T
        return f0, np.sqrt(np.clip(np.diag(cov), 0, None)), cov
    p = params.copy()
    p.update_constraints()
    f0 = np.asarray(fn(p.valuesdict()), float)
    if covar is None or not len(var_names):
        return f0, np.full(f0.shape, np.nan), np.full((f0.size, f0.size), np.nan)
    J = np.zeros((f0.size, len(var_names)))
    for j, n in enumerate(var_names):
        v = p[n].value
        sd = math.sqrt(abs(covar[j, j])) if np.isfinite(covar[j, j]) else 0.0
        h = max(1e-3 * sd, 1e-7 * max(abs(v), 1e-12), 1e-12)
        p[n].value = v + h
        p.update_constraints()
        fp = np.asarray(fn(p.valuesdict()), float)
        p[n].value = v - h
        p.update_constraints()
        fm = np.asarray(fn(p.valuesdict()), float)
        p[n].value = v
        J[:, j] = (fp - fm) / (2 * h)
    p.update_constraints()
    cov = J @ covar @ J.T
    return f0, np.sqrt(np.clip(np.diag(cov), 0, None)), cov


def resample(rng, best_fit, residual):
    """One synthetic data set: ``best_fit + sign * roll(residual, k)`` with a random shift ``k`` and
    sign per spectrum (per row of a stack). Circular shifts keep the correlation of the noise."""
    r = np.atleast_2d(np.asarray(residual, float))
    k = rng.integers(0, r.shape[-1], size=r.shape[0])
    s = np.where(rng.random(r.shape[0]) < 0.5, -1.0, 1.0)
    shifted = np.stack([np.roll(r[i], k[i]) for i in range(r.shape[0])]) * s[:, None]
    return np.asarray(best_fit, float) + shifted.reshape(np.shape(residual))


def montecarlo_draws(refit, best_fit, residual, n: int = 100, seed: int | None = 0) -> list:
    """``refit(y)`` for ``n`` synthetic data sets from :func:`resample` (one spectrum or a stack);
    failed refits (an exception or None) are left out. The draws of :func:`montecarlo`, for callers
    that need more than standard deviations (covariances of a stack's areas)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n)):
        y = resample(rng, best_fit, residual)
        try:
            v = refit(y)
        except Exception:  # a failed refit is left out and counted
            continue
        if v is not None:
            out.append(v)
    return out


def montecarlo(refit, best_fit, residual, n: int = 100, seed: int | None = 0):
    """Standard deviation of quantities over refits of resampled data.

    Parameters
    ----------
    refit : callable
        ``refit(y) -> array`` of quantities for synthetic data ``y`` (raise or return None on failure).
    best_fit, residual : ndarray
        Model at the optimum and ``data - best_fit``.
    n : int
        Number of synthetic data sets (:func:`resample`).

    Returns
    -------
    std : ndarray
        Per-quantity standard deviation (NaN when fewer than 3 refits succeeded).
    n_ok : int
    """
    out = [np.asarray(v, float) for v in montecarlo_draws(refit, best_fit, residual, n, seed)]
    out = [v for v in out if np.all(np.isfinite(v))]
    if len(out) < 3:
        return None, len(out)
    return np.std(np.vstack(out), axis=0, ddof=1), len(out)


def on_bound(value, lo, hi, rtol: float = 1e-4):
    """True where ``value`` sits on a finite bound: within ``rtol`` of the range ``hi - lo`` (of
    ``max(|value|, 1)`` when a bound is infinite). Scalars or arrays (a stack of fits at once)."""
    v = np.asarray(value, float)
    lo_f, hi_f = np.isfinite(lo), np.isfinite(hi)
    rng = (hi - lo) if (lo_f and hi_f) else np.maximum(np.abs(v), 1.0)
    tol = rtol * np.maximum(rng, 1e-300)
    with np.errstate(invalid="ignore"):
        hit = ((v - lo <= tol) if lo_f else False) | ((hi - v <= tol) if hi_f else False)
    return bool(hit) if v.ndim == 0 else np.broadcast_to(np.asarray(hit, bool), v.shape).copy()


def at_bound(params, rtol: float = 1e-4, skip=()) -> list[str]:
    """Varied parameters whose value sits on (within ``rtol`` of the range of) a finite bound."""
    return [name for name, par in params.items()
            if par.vary and not par.expr and name not in skip and on_bound(par.value, par.min, par.max, rtol)]


def fit_warnings(stats: dict, bounded: list[str] = (), residual=None, noise: float | None = None,
                 r2_min: float = 0.9, misfit_factor: float = 3.0, params=None, rms: float | None = None,
                 values: dict | None = None) -> list[str]:
    """The warnings every fit reports in its Result (and so in JSON, tables and the report).

    ``residual`` (or its ``rms`` directly, e.g. ``sqrt(redchi)`` of an unweighted batch fit) is
    compared with ``noise``; ``params`` (lmfit) or ``values`` (name -> value) name the bound values.
    """
    out = []
    for name in bounded:
        where = ""
        if params is not None and name in params:
            p = params[name]
            where = f" ({p.value:.6g}; bounds {p.min:.6g}..{p.max:.6g})"
        elif values is not None and name in values:
            where = f" ({values[name]:.6g})"
        out.append(f"parameter {name} ended at a bound{where}: its value is a limit, not a measurement "
                   f"(no standard error)")
    if stats.get("success") is False:
        out.append("fit did not converge")
    r2 = stats.get("r2")
    if r2 is not None and np.isfinite(r2) and r2 < r2_min:
        out.append(f"poor fit: r² = {r2:.3f}")
    if residual is not None:
        rms = float(np.sqrt(np.mean(np.asarray(residual, float) ** 2)))
    if rms is not None and noise and np.isfinite(rms):
        if rms > misfit_factor * noise:
            out.append(f"structured residual: RMS {rms:.3g} is {rms / noise:.1f}× the noise ({noise:.3g}); a missing "
                       f"component, a wrong lineshape or a baseline problem")
    return out


# ============================================================================ residual and start checks
#: a residual feature is unexplained signal from UNEXPLAINED_K noise SDs up
UNEXPLAINED_K = 5.0
#: ... over at least this fraction of the narrowest fitted FWHM (in points), and >= 3 points
UNEXPLAINED_FWHM_FRACTION = 0.5
#: ... and above this share of the fitted components there (less is the components' own misfit)
UNEXPLAINED_SHARE = 0.5
#: "signal near a start": a point of the (smoothed) isolated data above SIGNAL_K noise SDs ...
SIGNAL_K = 4.0
#: ... within SIGNAL_REACH FWHM of the start
SIGNAL_REACH = 3.0


def min_feature_points(x, fwhms, fraction: float = UNEXPLAINED_FWHM_FRACTION, floor: int = 3,
                       dx: float | None = None) -> int:
    """Consecutive points a residual feature must span: ``fraction`` of the narrowest FWHM, >= ``floor``.

    Parameters
    ----------
    x : array_like
        Axis of the fit (its median spacing converts widths to points).
    fwhms : iterable of float
        Fitted FWHMs of the components (axis units); non-finite / non-positive ones are ignored.
    dx : float, optional
        That median spacing, when the caller has it.
    """
    if dx is None:
        x = np.asarray(x, float)
        dx = float(np.median(np.abs(np.diff(x)))) if x.size > 1 else 0.0
    w = [float(f) for f in fwhms if f is not None and np.isfinite(f) and f > 0]
    if not w or not dx > 0:
        return int(floor)
    return int(max(floor, math.ceil(fraction * min(w) / dx)))


def unexplained_signal(x, residual, sigma: float, min_points: int = 3, *, model=None, k: float = UNEXPLAINED_K,
                       explained: float = UNEXPLAINED_SHARE, max_features: int = 5) -> list[tuple[float, float]]:
    """Residual features no component explains: data above the fit by more than ``k`` noise SDs.

    A feature is a run of at least ``min_points`` consecutive points whose residual
    (data - fit) exceeds ``k * sigma`` and, with ``model``, ``explained`` times the components
    there; its position is the point of its largest residual. Only excesses count (signal the
    model lacks); a model above the data is a lineshape or baseline problem that
    :func:`fit_warnings`' RMS rule reports. The ``model`` test separates a missing component
    (an excess where the components put little) from lineshape mismatch at high S/N (an excess
    of a few % to ~15 % of a line on the line itself: a real powder pattern's horns against the
    quadrupolar model, a Voigt line against a pseudo-Voigt).

    Parameters
    ----------
    x, residual : array_like (n,)
        Axis and ``data - best_fit`` in the order of the fit (points left out of a fit are simply
        absent: consecutive means consecutive in these arrays).
    sigma : float
        Robust noise SD of the data (:func:`specproc.fitting.noise.noise_sigma`).
    min_points : int
        Shortest run that counts (:func:`min_feature_points`).
    model : array_like (n,), optional
        The fitted components without the baseline (in the residual's units).
    k : float
        Threshold in noise SDs.
    explained : float
        An excess below this share of ``model`` is the component's own misfit, not new signal.
    max_features : int
        Most features returned.

    Returns
    -------
    list of (float, float)
        ``(position, residual / sigma at it)``, strongest first; empty when none (or ``sigma``
        is not a positive number).
    """
    x = np.asarray(x, float)
    r = np.asarray(residual, float)
    if not (sigma and np.isfinite(sigma) and sigma > 0) or r.size == 0:
        return []
    z = r / sigma
    hit = np.nan_to_num(z, nan=0.0) > k
    if model is not None:
        hit &= r > explained * np.abs(np.asarray(model, float))
    above = np.concatenate([[False], hit, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    starts, stops = edges[::2], edges[1::2]
    out = []
    for a, b in zip(starts, stops):
        if b - a >= max(1, int(min_points)):
            i = a + int(np.argmax(z[a:b]))
            out.append((float(x[i]), float(z[i])))
    out.sort(key=lambda t: -t[1])
    return out[:max_features]


def unexplained_warning(features, unit: str = "") -> str | None:
    """The warning sentence of :func:`unexplained_signal`'s features (None when there are none)."""
    if not features:
        return None
    u = f" {unit}" if unit else ""
    where = ", ".join(f"{pos:.4g}{u} ({z:.1f}σ)" for pos, z in features)
    return (f"unexplained signal at {where}: the data exceed the fit by more than {UNEXPLAINED_K:g} noise SDs over "
            f"several points where the components put less than twice that excess (a missing component?)")


def signal_near(x, y, center: float, reach: float, sigma: float, *, k: float = SIGNAL_K,
                window: int | None = None) -> bool:
    """True when the data rise above ``k`` noise SDs anywhere within ``reach`` of ``center``.

    Parameters
    ----------
    x, y : array_like (n,)
        Axis and the data to test, baseline (and other components) removed.
    center, reach : float
        Axis units: the points ``|x - center| <= reach`` are tested.
    sigma : float
        Noise SD of the data.
    k : float
        Threshold in noise SDs.
    window : int, optional
        Savitzky-Golay window (points) applied before the test, so a single noise spike over
        thousands of points is not signal (default: no smoothing).

    Returns
    -------
    bool
        Also True when the test cannot be made (no points there, no valid ``sigma``): only a
        tested absence is reported as one.
    """
    from .noise import smooth

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if not (sigma and np.isfinite(sigma) and sigma > 0):
        return True
    idx = np.flatnonzero(np.abs(x - center) <= reach)
    if idx.size == 0:
        return True
    if np.nanmax(y[idx]) > 2 * k * sigma:      # far above any noise excursion: no smoothing needed
        return True
    win = int(window or 0)
    a, b = max(0, idx[0] - win), min(x.size, idx[-1] + win + 1)   # smooth the tested stretch only
    ys = smooth(y[a:b], window=win) if win > 3 else y[a:b]
    return bool(np.nanmax(ys[idx - a]) > k * sigma)


def moved_from_start(name: str, given: float, end: float, fwhm: float, window: float | None = None,
                     neighbours: dict | None = None, unit: str = "") -> str | None:
    """A warning when a fitted centre ended far from the start the user gave, else None.

    Far: more than ``max(fwhm, window)`` away, or past the start of a neighbouring component
    (``neighbours``: name -> its start, only components that are separate lines).

    Parameters
    ----------
    name : str
        Component name.
    given, end : float
        The start the user gave and the fitted centre.
    fwhm : float
        The component's fitted FWHM.
    window : float, optional
        How far the user allowed the centre to move (``center_window``).
    neighbours : dict, optional
        Starts of the other, separate components.
    unit : str
        Axis unit for the sentence.
    """
    if not (np.isfinite(given) and np.isfinite(end)):
        return None
    u = f" {unit}" if unit else ""
    dist = abs(end - given)
    allowed = max(float(fwhm) if np.isfinite(fwhm) else 0.0, float(window or 0.0))
    head = f"{name}: given at {given:g}{u}, ended at {end:.6g}{u} ({dist:.3g}{u} away"
    passed = [(o, s) for o, s in (neighbours or {}).items() if min(given, end) < s < max(given, end)]
    if passed:
        o, s = min(passed, key=lambda t: abs(t[1] - given))
        return f"{head}, past the start of {o} at {s:g}{u}): it describes another feature, not the one given"
    if dist > allowed:
        what = (f"more than the allowed window {window:g}{u}" if window and window >= fwhm
                else f"more than its FWHM {fwhm:.3g}{u}")
        return f"{head}, {what}): it describes another feature, not the one given"
    return None
