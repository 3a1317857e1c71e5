"""Noise estimation and smoothing shared by every technique.

One robust estimate for every kind of spectrum: processed spectra (NMR after apodization and
zero filling, FTIR after interpolation, EELS after binning) have *correlated* noise, so the
first-difference estimate alone underestimates it, and raw counting data have white noise, where
the first-difference estimate is the right one. :func:`noise_sigma` takes the larger of the two
(each is robust to the signal), which is right in both regimes.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["noise_sigma", "noise_sigma_diff", "noise_sigma_clipped", "smooth"]


def _median(a: np.ndarray) -> float:
    """Median of a finite 1D array: ``np.median``'s value without its generic (axis, NaN) overhead,
    which is most of the cost for the few-thousand-point arrays of a spectrum."""
    n = a.size
    k = n // 2
    if n % 2:
        return float(np.partition(a, k)[k])
    part = np.partition(a, (k - 1, k))
    return float((part[k - 1] + part[k]) / 2)


def noise_sigma_diff(y) -> float:
    """Noise SD from first differences (MAD / sqrt 2): right for white noise, blind to smooth signal."""
    y = np.asarray(y, float)
    if y.size < 3:
        return 0.0
    d = np.diff(y)
    return float(1.4826 * _median(np.abs(d - _median(d))) / np.sqrt(2.0))


@functools.lru_cache(maxsize=8)
def _unit_grid(n: int) -> np.ndarray:
    """``linspace(-1, 1, n)``, read-only and kept (a batch estimates the noise of many spectra of one length)."""
    t = np.linspace(-1.0, 1.0, n)
    t.flags.writeable = False
    return t


def noise_sigma_clipped(y, k: float = 4.0, min_free: float = 0.2, max_iter: int = 5) -> float:
    """Noise SD as the sigma-clipped MAD of the intensities about a straight baseline.

    Signal points are clipped away; the baseline is a line through the kept points (a robust line
    through the medians of the two halves first), so a sloped baseline is not taken for noise (a
    slope spanning 0.3 over a spectrum with noise 0.003 gave 0.1 without it). Returns 0 when fewer
    than ``min_free`` of the points are signal-free (a window cut tightly around the lines), where
    this estimate is meaningless.
    """
    y = np.asarray(y, float)
    n = y.size
    if n < 4:
        return 0.0
    t = _unit_grid(n)                      # the record's order: a baseline drifts along it
    h = n // 2
    # t is evenly spaced: the medians of its halves are the mid-points of their ends
    slope = (_median(y[n - h:]) - _median(y[:h])) / ((t[n - h] + t[-1]) / 2 - (t[0] + t[h - 1]) / 2)
    line = slope * t + _median(y - slope * t)
    keep = None  # every point
    s = prev = 0.0
    for _ in range(max_iter):
        r = y - line
        v = r if keep is None else r[keep]
        med = _median(v)
        s = float(1.4826 * _median(np.abs(v - med)))
        new = np.abs(r - med) <= k * s
        if np.count_nonzero(new) < min_free * n or s <= 0:
            return 0.0
        # converged: the clipped set is stable, or the estimate moved by < 1 % (a noise SD is not
        # known better than that; the line moving by a hair re-clips a point or two for ever)
        if (new.all() if keep is None else np.array_equal(new, keep)) or abs(s - prev) <= 0.01 * s:
            break
        prev = s
        keep = new
        tk, yk = t[keep], y[keep]      # least-squares line through the kept points (closed form)
        dt = tk - tk.mean()
        slope = float(np.dot(dt, yk) / np.dot(dt, dt))
        line = slope * (t - tk.mean()) + yk.mean()
    return s


def noise_sigma(y, method: str = "auto") -> float:
    """Robust noise standard deviation of a 1D signal.

    Parameters
    ----------
    y : array_like
        Intensities (any units); NaN values are ignored.
    method : {"auto", "diff", "clipped"}
        ``"diff"``: first differences (white noise); ``"clipped"``: sigma-clipped MAD of the
        intensities (correlated noise, needs >= 20 % signal-free points); ``"auto"`` (default):
        the larger of the two, which is right for white and for correlated noise.

    Returns
    -------
    float
        > 0 (falls back to the standard deviation, then to 1e-12, for degenerate input).
    """
    y = np.asarray(y, float)
    finite = np.isfinite(y)
    if not finite.all():
        y = y[finite]
    if y.size < 3:
        return 1e-12
    if method == "diff":
        s = noise_sigma_diff(y)
    elif method == "clipped":
        s = noise_sigma_clipped(y)
    elif method == "auto":
        s = max(noise_sigma_clipped(y), noise_sigma_diff(y))
    else:
        raise ValueError(f"method must be 'auto', 'diff' or 'clipped', got {method!r}")
    return s or float(np.std(y)) or 1e-12


def smooth(y, window: int | None = None, order: int = 3):
    """Savitzky–Golay smoothing (scipy); the default window grows with the length (n/400, >= 5)."""
    from scipy.signal import savgol_filter

    y = np.asarray(y, float)
    win = window if window is not None else max(5, (len(y) // 400) * 2 + 5)
    win = int(win) | 1
    if win >= len(y) or win <= order:
        return y.copy()
    return savgol_filter(y, win, order)
