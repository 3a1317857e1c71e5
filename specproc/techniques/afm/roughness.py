"""Areal roughness (ISO 25178-2 names) and line roughness (ISO 4287 Ra, Rq along scan lines).

Plain moments of the levelled height map (the ISO definitions are one line each): heights ``z``
relative to their mean, NaN pixels ignored. All lengths in m.
"""
from __future__ import annotations

import numpy as np


def areal(z) -> dict:
    """``Sa`` (mean absolute height), ``Sq`` (RMS), ``Sp``, ``Sv``, ``Sz = Sp + Sv`` (m),
    ``Ssk`` (skewness), ``Sku`` (kurtosis, 3 for a Gaussian surface)."""
    v = np.asarray(z, float)
    v = v[np.isfinite(v)]
    if v.size < 4:
        from ...core.errors import ProcessingError

        raise ProcessingError("fewer than 4 valid height pixels: no roughness")
    d = v - v.mean()
    sq = float(np.sqrt(np.mean(d ** 2)))
    sp, sv = float(d.max()), float(-d.min())
    return {"Sa_m": float(np.mean(np.abs(d))), "Sq_m": sq, "Sp_m": sp, "Sv_m": sv, "Sz_m": sp + sv,
            "Ssk": float(np.mean(d ** 3) / sq ** 3) if sq > 0 else 0.0,
            "Sku": float(np.mean(d ** 4) / sq ** 4) if sq > 0 else 0.0}


def lines(z) -> dict:
    """Ra and Rq of every scan line (each line relative to its own mean): mean and SD over lines (m)."""
    z = np.asarray(z, float)
    with np.errstate(all="ignore"):
        d = z - np.nanmean(z, axis=1, keepdims=True)
        ra = np.nanmean(np.abs(d), axis=1)
        rq = np.sqrt(np.nanmean(d ** 2, axis=1))
    ra, rq = ra[np.isfinite(ra)], rq[np.isfinite(rq)]
    return {"Ra_m": float(ra.mean()), "Ra_sd_m": float(ra.std(ddof=1)) if ra.size > 1 else 0.0,
            "Rq_m": float(rq.mean()), "Rq_sd_m": float(rq.std(ddof=1)) if rq.size > 1 else 0.0,
            "n_lines": int(ra.size)}
