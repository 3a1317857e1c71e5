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
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["covariance", "propagate", "montecarlo", "at_bound", "on_bound", "fit_warnings", "r_squared"]


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


def montecarlo(refit, best_fit, residual, n: int = 100, seed: int | None = 0):
    """Standard deviation of quantities over refits of resampled data.

    Parameters
    ----------
    refit : callable
        ``refit(y) -> array`` of quantities for synthetic data ``y`` (raise or return None on failure).
    best_fit, residual : ndarray
        Model at the optimum and ``data - best_fit``.
    n : int
        Number of synthetic data sets: ``best_fit + sign * roll(residual, k)`` with random ``k`` and sign
        (circular shifts keep the correlation of the noise).

    Returns
    -------
    std : ndarray
        Per-quantity standard deviation (NaN when fewer than 3 refits succeeded).
    n_ok : int
    """
    rng = np.random.default_rng(seed)
    best_fit = np.asarray(best_fit, float)
    residual = np.asarray(residual, float)
    out = []
    for _ in range(int(n)):
        k = int(rng.integers(0, residual.size))
        s = 1.0 if rng.random() < 0.5 else -1.0
        try:
            v = refit(best_fit + s * np.roll(residual, k))
        except Exception:  # a failed refit is left out and counted
            continue
        if v is not None and np.all(np.isfinite(v)):
            out.append(np.asarray(v, float))
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
