"""Quantification: atomic % from areas and RSFs, depth scale, 50 %-thickness with uncertainty, presence.

Definitions (docs/xps.md)
-------------------------
* atomic %: ``I_i = A_i / (RSF_i x T(KE_i) x lambda(KE_i))`` and ``at%_i = 100 I_i / sum_j I_j`` over every
  component of every quantified region at one level; ``T = KE^t`` and ``lambda = KE^e`` only when the
  exponents are given (otherwise 1). Errors: first-order propagation with the full area covariance of each
  region (overlapping components are anti-correlated; regions are independent).
* species atomic %: the sum over components with that name (e.g. Li2CO3 in C 1s and O 1s).
* depth = etch time x sputter rate.
* thickness of a species (or of the interphase, the sum of its species): the depth where its at % first
  falls below 50 % of its maximum, after the maximum (linear interpolation between levels). Error, in
  quadrature: Monte-Carlo over the at % errors (normal draws), the relative sputter-rate error, and the
  interpolation spread (linear vs monotone-cubic crossing).
* presence: max at % over the levels >= the detection limit (default 1 at %) at a level where the
  component area is significant (> 3 standard errors).
* a component *not detected* at a level (no signal near its given start: the toolkit's after-fit
  check) is left out of that level's atomic % (its own at % is NaN, the others are normalised
  without it); for the 50 % thickness such a level counts as 0.
"""
from __future__ import annotations

import numpy as np


def atomic_percent_cov(areas, area_cov, factors, known):
    """At % and its standard error from the full area covariance.

    Parameters
    ----------
    areas : array (levels, k)
    area_cov : array (levels, k, k)
        Covariance of the areas (block diagonal over regions; zero rows for absent components).
    factors : array (k,)
        Sensitivity of each component (RSF x corrections).
    known : bool array (levels, k)
        Components with a standard error of their own (others get NaN).
    """
    A = np.clip(np.asarray(areas, float), 0, None)
    f = np.asarray(factors, float)
    I = A / f
    C = np.asarray(area_cov, float) / (f[:, None] * f[None, :])
    S = I.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = 100 * I / S[:, None]
        k = I.shape[1]
        # G[l, i, j] = d at_i / d I_j = 100 (delta_ij S - I_i) / S^2
        G = 100 * (np.eye(k)[None] * S[:, None, None] - I[:, :, None]) / (S ** 2)[:, None, None]
        var = np.einsum("lij,ljm,lim->li", G, C, G)
    at_se = np.sqrt(np.clip(var, 0, None))
    return at, np.where(known, at_se, np.nan)


def atomic_percent(areas, area_se, factors):
    """At % and its standard error.

    Parameters
    ----------
    areas, area_se : array (levels, k)
        Component areas and errors (NaN error = unknown, treated as 0 for the others' errors).
    factors : array (k,)
        Sensitivity of each component (RSF x corrections).

    Returns
    -------
    at, at_se : arrays (levels, k) in %; ``at_se`` NaN where the component's own area has no error.
    """
    A = np.asarray(areas, float)
    se = np.asarray(area_se, float)
    f = np.asarray(factors, float)
    I = np.clip(A, 0, None) / f
    Ise = np.where(np.isfinite(se), se, 0.0) / f
    S = I.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = 100 * I / S
        # d at_i / d I_j = 100 (delta_ij S - I_i) / S^2
        var = (100 / S) ** 2 * ((1 - I / S) ** 2 * Ise ** 2 + (I / S) ** 2 * ((Ise ** 2).sum(axis=1, keepdims=True)
                                                                            - Ise ** 2))
    at_se = np.sqrt(var)
    at_se = np.where(np.isfinite(se), at_se, np.nan)
    return at, at_se


def crossing_50(depth, prof):
    """Depth where ``prof`` first falls below half its maximum after the maximum (None if never).

    Works on many profiles at once: ``prof`` (..., levels) -> array (...) with NaN where not reached.
    """
    z = np.asarray(depth, float)
    P = np.atleast_2d(np.asarray(prof, float))
    out = np.full(P.shape[0], np.nan)
    imax = np.nanargmax(P, axis=1)
    half = 0.5 * P[np.arange(P.shape[0]), imax]
    for r in range(P.shape[0]):
        p = P[r]
        for j in range(imax[r], p.size - 1):
            if p[j] >= half[r] > p[j + 1]:
                out[r] = z[j] + (half[r] - p[j]) * (z[j + 1] - z[j]) / (p[j + 1] - p[j])
                break
    return out


def thickness(depth, prof, prof_se, *, rate_rel_err=0.0, n_mc=400, seed=0):
    """50 %-of-maximum thickness of a profile with a Monte-Carlo standard error.

    Returns
    -------
    (value or None, stderr or None, note)
    """
    z = np.asarray(depth, float)
    p = np.asarray(prof, float)
    if p.size < 3 or not np.any(p > 0):
        return None, None, "profile is empty"
    v = float(crossing_50(z, p)[0])
    if not np.isfinite(v):
        return None, None, (f"does not fall to 50 % of its maximum within the profile "
                            f"(deeper than {z[-1]:.4g})")
    se = np.where(np.isfinite(prof_se), prof_se, 0.0)
    rng = np.random.default_rng(seed)
    draws = p[None, :] + rng.standard_normal((n_mc, p.size)) * se[None, :]
    vals = crossing_50(z, draws)
    ok = np.isfinite(vals)
    note = ""
    if ok.sum() < max(10, n_mc // 2):
        return v, None, "50 % crossing not reproducible within the errors (no standard error)"
    stat = float(np.std(vals[ok], ddof=1))
    if ok.sum() < n_mc:
        note = f"{n_mc - int(ok.sum())} of {n_mc} Monte-Carlo profiles did not cross 50 %"
    # interpolation between levels: the spread between a linear and a monotone cubic (PCHIP) crossing
    interp = 0.0
    try:
        from scipy.interpolate import PchipInterpolator

        zz = np.linspace(z[0], z[-1], 50 * z.size)
        vc = float(crossing_50(zz, PchipInterpolator(z, p)(zz))[0])
        interp = abs(vc - v) if np.isfinite(vc) else 0.0
    except ValueError:
        pass
    err = float(np.sqrt(stat ** 2 + (v * rate_rel_err) ** 2 + interp ** 2))
    return v, err, note


def presence(at, at_se, area, area_se, detection_limit=1.0, min_snr=3.0):
    """Presence of a species from its at % profile (levels,) and its summed area (levels,).

    Returns
    -------
    (present: bool, max_at: float, max_at_se: float or None, level of max: int)
        ``max_at`` is NaN when the species is not detected at any level (NaN at % everywhere).
    """
    at = np.asarray(at, float)
    at_se = np.asarray(at_se, float)
    with np.errstate(invalid="ignore"):
        sig = np.asarray(area, float) > min_snr * np.where(np.isfinite(area_se), area_se, np.inf)
    masked = np.where(sig & np.isfinite(at), at, -np.inf)
    if np.all(~np.isfinite(masked)):
        i = int(np.nanargmax(at)) if np.any(np.isfinite(at)) else 0
        se = float(at_se[i]) if np.isfinite(at_se[i]) else None
        return False, float(at[i]) if np.isfinite(at[i]) else float("nan"), se, i
    i = int(np.argmax(masked))
    se = float(at_se[i]) if np.isfinite(at_se[i]) else None
    return bool(at[i] >= detection_limit), float(at[i]), se, i
