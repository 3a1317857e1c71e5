"""Peak picking shared by every technique (scipy.signal.find_peaks on a smoothed signal).

Candidates are maxima whose prominence exceeds ``snr`` noise standard deviations; their FWHM
comes from :func:`scipy.signal.peak_widths`. Works for increasing and decreasing axes (ppm axes
run downwards) and for irregular grids (widths are converted with the local spacing).

No ``warnings.catch_warnings`` here: it swaps the process-wide filter list and these functions run
in threads. scipy warns (``PeakPropertyWarning``) only for an index with no prominence, so such
indices are never handed to it (:func:`_prominent`).
"""
from __future__ import annotations

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
    from scipy.signal import peak_widths

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
    idx, prop = _find(ys, snr * noise, kw, stride=_stride(y.size) if smooth else 1)
    if idx.size == 0:
        return []
    w_pts, _, left, right = peak_widths(ys, idx, rel_height=0.5)  # every idx has a prominence > 0
    # points -> axis units with the local spacing (irregular grids)
    xi = np.arange(x.size)
    widths = np.abs(np.interp(right, xi, x) - np.interp(left, xi, x))
    widths = np.where(np.isfinite(widths) & (widths > 0), widths, w_pts * dx)
    order = np.argsort(prop["prominences"])[::-1][:max_peaks]
    return [{"center": float(x[idx[i]]), "height": float(ys[idx[i]]), "fwhm": float(max(widths[i], 2 * dx)),
             "prominence": float(prop["prominences"][i]), "index": int(idx[i])} for i in order]


def _stride(n: int) -> int:
    """Search stride on a smoothed signal of ``n`` points: the smoothing window (n/400) over 32, so
    a line is still sampled 16+ times across the window; 1 below ~12,000 points."""
    return max(1, (max(5, (n // 400) * 2 + 5)) // 32)


def _find(ys, prominence: float, kw: dict, stride: int = 1):
    """``scipy.signal.find_peaks`` on every ``stride``-th point of a smoothed signal, each hit moved
    to the maximum of the full grid around it, prominences on the full grid. Smoothing leaves
    ~600,000 ripple maxima on a 3M-point scan, and scipy's prominence search over all of them
    took 15 s; on the decimated signal it takes milliseconds, with the same peaks."""
    from scipy.signal import find_peaks, peak_prominences

    if stride <= 1:
        return find_peaks(ys, prominence=prominence, **kw)
    kw = dict(kw)
    if "distance" in kw:
        kw["distance"] = max(1, kw["distance"] // stride)
    coarse, _ = find_peaks(ys[::stride], prominence=prominence, **kw)
    if coarse.size == 0:
        return coarse, {"prominences": np.zeros(0)}
    idx = []
    for j in coarse * stride:
        lo, hi = max(0, j - stride), min(ys.size, j + stride + 1)
        idx.append(lo + int(np.argmax(ys[lo:hi])))
    idx = np.unique(np.asarray(idx, int))
    idx = idx[[_prominent(ys, j) for j in idx]]  # a window edge that is no maximum has no prominence
    prom = peak_prominences(ys, idx)[0]
    keep = prom >= prominence
    return idx[keep], {"prominences": prom[keep]}


def width_at(x, y, center: float, smooth: bool = True) -> float:
    """FWHM (axis units) of the feature at ``center`` (10 spacings when undefined)."""
    from scipy.signal import peak_widths

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ys = _smooth(y) if smooth else y
    dx = float(np.median(np.abs(np.diff(x)))) or 1.0
    i = int(np.argmin(np.abs(x - center)))
    try:
        w = peak_widths(ys, [i], rel_height=0.5)[0][0] * dx if _prominent(ys, i) else 0.0
    except Exception:  # degenerate data
        w = 0.0
    return float(w) if np.isfinite(w) and w > 0 else 10 * dx


def _prominent(ys, i: int) -> bool:
    """True when index ``i`` of ``ys`` has a prominence > 0 in scipy's definition.

    scipy scans each side from ``i`` through values not above ``ys[i]``; the prominence is > 0 when
    on both sides the first value that differs from ``ys[i]`` is lower (an edge counts as higher).
    Checked before calling scipy, which otherwise warns (and silencing the warning would need
    ``warnings.catch_warnings``, not thread-safe).
    """
    ys = np.asarray(ys)
    v = ys[i]
    return bool(np.isfinite(v) and _first_other(ys, i, -1, v) < v and _first_other(ys, i, 1, v) < v)


def _first_other(ys, i: int, step: int, v) -> float:
    """The first value after index ``i`` in direction ``step`` that differs from ``v`` (inf at an
    edge); scanned in growing blocks, so a neighbour that differs costs one comparison."""
    n, block, j = ys.size, 8, i
    while True:
        lo, hi = (max(0, j - block), j) if step < 0 else (j + 1, min(n, j + 1 + block))
        if lo >= hi:
            return np.inf
        seg = ys[lo:hi]
        diff = np.flatnonzero(seg != v)
        if diff.size:
            return float(seg[diff[-1] if step < 0 else diff[0]])
        j = lo if step < 0 else hi - 1
        block *= 4
