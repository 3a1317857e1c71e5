"""Peak picking shared by every technique (scipy.signal.find_peaks on a smoothed signal).

Candidates are maxima whose prominence exceeds ``snr`` noise standard deviations; their FWHM
comes from :func:`scipy.signal.peak_widths`. Works for increasing and decreasing axes (ppm axes
run downwards) and for irregular grids (widths are converted with the local spacing).
"""
from __future__ import annotations

import warnings

import numpy as np

from .noise import noise_sigma, smooth as _smooth

__all__ = ["pick_peaks", "width_at"]


def pick_peaks(x, y, *, noise: float | None = None, snr: float = 5.0, max_peaks: int = 8,
               smooth: bool = True, min_distance: float | None = None) -> list[dict]:
    """Candidate peaks, most prominent first.

    Parameters
    ----------
    x, y : array_like (n,)
        Axis (any direction, any units) and intensities.
    noise : float, optional
        Noise SD; default :func:`~specproc.fitting.noise.noise_sigma` of ``y``.
    snr : float
        Minimum prominence in noise SDs.
    max_peaks : int
        Number of candidates returned at most.
    smooth : bool
        Savitzky–Golay smoothing before the search (recommended for noisy data).
    min_distance : float, optional
        Minimum separation of two candidates in axis units.

    Returns
    -------
    list of dict
        ``{"center", "height", "fwhm", "prominence", "index"}`` (axis units; height of the
        smoothed signal).
    """
    from scipy.signal import find_peaks, peak_widths

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.size < 3 or x.shape != y.shape:
        return []
    noise = float(noise) if noise is not None else noise_sigma(y)
    ys = _smooth(y) if smooth else y
    dx = float(np.median(np.abs(np.diff(x)))) or 1.0
    kw = {}
    if min_distance:
        kw["distance"] = max(1, int(round(min_distance / dx)))
    idx, prop = find_peaks(ys, prominence=snr * noise, **kw)
    if idx.size == 0:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w_pts, _, left, right = peak_widths(ys, idx, rel_height=0.5)
    # points -> axis units with the local spacing (irregular grids)
    xi = np.arange(x.size)
    widths = np.abs(np.interp(right, xi, x) - np.interp(left, xi, x))
    widths = np.where(np.isfinite(widths) & (widths > 0), widths, w_pts * dx)
    order = np.argsort(prop["prominences"])[::-1][:max_peaks]
    return [{"center": float(x[idx[i]]), "height": float(ys[idx[i]]), "fwhm": float(max(widths[i], 2 * dx)),
             "prominence": float(prop["prominences"][i]), "index": int(idx[i])} for i in order]


def width_at(x, y, center: float, smooth: bool = True) -> float:
    """FWHM (axis units) of the feature at ``center`` (10 spacings when undefined)."""
    from scipy.signal import peak_widths

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ys = _smooth(y) if smooth else y
    dx = float(np.median(np.abs(np.diff(x)))) or 1.0
    i = int(np.argmin(np.abs(x - center)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = peak_widths(ys, [i], rel_height=0.5)[0][0] * dx
    except Exception:  # degenerate data
        w = 0.0
    return float(w) if np.isfinite(w) and w > 0 else 10 * dx
