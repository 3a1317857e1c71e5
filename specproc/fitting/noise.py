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

__all__ = ["noise_sigma", "noise_sigma_savgol", "noise_sigma_rows", "noise_sigma_diff", "noise_sigma_clipped", "robust_sigma", "smooth",
           "bin_mean", "POINTS_PER_FWHM"]


def _median(a: np.ndarray) -> float:
    """Median of a finite 1D array: ``np.median``'s value without its generic (axis, NaN) overhead,
    which is most of the cost for the few-thousand-point arrays of a spectrum."""
    n = a.size
    k = n // 2
    if n % 2:
        return float(np.partition(a, k)[k])
    part = np.partition(a, (k - 1, k))
    return float((part[k - 1] + part[k]) / 2)


def robust_sigma(a) -> float:
    """Normal-consistent MAD (1.4826 × median absolute deviation) of the finite values of ``a``
    (any shape; 0 with fewer than 2): the SD of the bulk of the values, blind to outliers."""
    v = np.asarray(a, float).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2:
        return 0.0
    return float(1.4826 * _median(np.abs(v - _median(v))))


def noise_sigma_diff(y) -> float:
    """Noise SD from first differences (MAD / sqrt 2): right for white noise, blind to smooth signal."""
    y = np.asarray(y, float)
    if y.size < 3:
        return 0.0
    return robust_sigma(np.diff(y)) / np.sqrt(2.0)


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


# ---------------------------------------------------------------- the same estimator on a stack
# Written here: numpy's ``nanmedian`` loops over rows in Python for long rows, and no maintained
# library has a masked row median or this sigma-clipped estimate; these are the 1D functions above
# with every step done on all rows at once (a Python loop over the <= 5 clipping iterations only).
def _median_rows(v: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Median of each row of ``v`` (n, m) over the points where ``keep`` is True (all: None).

    Excluded points become -inf (as many as put every row's lower middle kept value at position
    ``(m - 1) // 2``) and +inf (the rest), so one ``np.partition`` at that one position finds every
    row's lower median, and the minimum of what lies above it the upper one (numpy's partition with
    two positions took five times as long): the 1D ``_median``'s order statistics, averaged the same
    way. NaN for a row with nothing kept.
    """
    n, m = v.shape
    P = (m - 1) // 2
    if keep is None:
        k = np.full(n, m)
        w = v.copy()
    else:
        k = np.count_nonzero(keep, axis=1)
        a = P - (np.maximum(k, 1) - 1) // 2                       # -inf count per row
        rank = np.cumsum(~keep, axis=1)                           # 1-based rank of each excluded point
        w = np.where(keep, v, np.where(rank <= a[:, None], -np.inf, np.inf))
    w.partition(P, axis=1)
    lo = w[:, P]
    hi = w[:, P + 1:].min(axis=1) if m > 1 else lo
    med = np.where(k % 2 == 1, lo, (lo + hi) / 2)
    return np.where(k > 0, med, np.nan)


def _robust_sigma_rows(v: np.ndarray) -> np.ndarray:
    """:func:`robust_sigma` of each row (finite rows)."""
    return 1.4826 * _median_rows(np.abs(v - _median_rows(v)[:, None]))


def _clipped_rows(Y: np.ndarray, k: float = 4.0, min_free: float = 0.2, max_iter: int = 5) -> np.ndarray:
    """:func:`noise_sigma_clipped` of each row of a finite (n, m) array, all rows at once."""
    n, m = Y.shape
    if m < 4:
        return np.zeros(n)
    t = _unit_grid(m)
    h = m // 2
    slope = ((_median_rows(Y[:, m - h:]) - _median_rows(Y[:, :h]))
             / ((t[m - h] + t[-1]) / 2 - (t[0] + t[h - 1]) / 2))
    line = slope[:, None] * t + _median_rows(Y - slope[:, None] * t)[:, None]
    keep = None
    s = np.zeros(n)
    prev = np.zeros(n)
    out = np.full(n, np.nan)                 # NaN: still iterating
    act = np.arange(n)                       # rows still iterating (indices into Y)
    for _ in range(max_iter):
        r = Y[act] - line
        med = _median_rows(r, keep)
        s_a = 1.4826 * _median_rows(np.abs(r - med[:, None]), keep)
        new = np.abs(r - med[:, None]) <= k * s_a[:, None]
        bad = (np.count_nonzero(new, axis=1) < min_free * m) | ~(s_a > 0)
        same = new.all(axis=1) if keep is None else (new == keep).all(axis=1)
        conv = ~bad & (same | (np.abs(s_a - prev) <= 0.01 * s_a))
        out[act[bad]] = 0.0
        out[act[conv]] = s_a[conv]
        s[act] = s_a
        go = ~bad & ~conv
        if not go.any():
            break
        act, line, prev, keep = act[go], line[go], s_a[go], new[go]
        cnt = np.count_nonzero(keep, axis=1)
        tm = (keep * t).sum(axis=1) / cnt
        Ya = Y[act]
        ym = np.where(keep, Ya, 0.0).sum(axis=1) / cnt
        dt = np.where(keep, t - tm[:, None], 0.0)
        slope = np.einsum("nm,nm->n", dt, Ya) / np.einsum("nm,nm->n", dt, dt)
        line = slope[:, None] * (t - tm[:, None]) + ym[:, None]
    left = np.isnan(out)
    out[left] = s[left]                       # max_iter reached: the last estimate, as the 1D loop
    return out


def noise_sigma_rows(Y, method: str = "auto", block: int = 1 << 20) -> np.ndarray:
    """:func:`noise_sigma` of every row of a stack, computed on all rows at once.

    Parameters
    ----------
    Y : array_like (..., m)
        Stack of signals (e.g. fit residuals of a batch), the signal on the last axis.
    method : {"auto", "diff", "clipped"}
        As :func:`noise_sigma`.
    block : int
        Values per block of rows (bounded working memory; ~6 arrays of the block's size).

    Returns
    -------
    ndarray (...)
        The noise SD of each row, :func:`noise_sigma`'s value (to rounding: the straight lines are
        fitted with sums in another order). Rows holding NaN/inf get :func:`noise_sigma` of their
        finite points (one call each: such rows are rare).
    """
    if method not in ("auto", "diff", "clipped"):
        raise ValueError(f"method must be 'auto', 'diff' or 'clipped', got {method!r}")
    Y = np.asarray(Y, float)
    shape, m = Y.shape[:-1], Y.shape[-1]
    Yf = Y.reshape(-1, m)
    n = Yf.shape[0]
    out = np.empty(n)
    if m < 3:
        out[:] = 1e-12
        return out.reshape(shape)
    finite = np.isfinite(Yf).all(axis=1)
    step = max(1, block // m)
    for s in range(0, n, step):
        rows = np.arange(s, min(n, s + step))
        rows = rows[finite[rows]]
        if not rows.size:
            continue
        Yb = Yf[rows]
        if method == "diff":
            sig = _robust_sigma_rows(np.diff(Yb, axis=1)) / np.sqrt(2.0)
        elif method == "clipped":
            sig = _clipped_rows(Yb)
        else:
            sig = np.maximum(_clipped_rows(Yb), _robust_sigma_rows(np.diff(Yb, axis=1)) / np.sqrt(2.0))
        zero = ~(sig != 0)                    # the 1D `s or std(y) or 1e-12`
        if zero.any():
            sd = Yb[zero].std(axis=1)
            sig[zero] = np.where(sd != 0, sd, 1e-12)
        out[rows] = sig
    for i in np.nonzero(~finite)[0]:
        out[i] = noise_sigma(Yf[i], method)
    return out.reshape(shape)


#: above this window (points) the Savitzky–Golay smoothing is done here (coefficients on a
#: normalised abscissa, overlap-add FFT convolution) instead of by ``scipy.signal.savgol_filter``:
#: scipy convolves directly, O(n·window), and the default window grows with n (n/200 points; 0.06°
#: of a fine XRD scan), so a 3M-point pattern took minutes; and scipy's coefficients come from an
#: unscaled Vandermonde system that loses all precision for long windows (scipy 1.17:
#: ``savgol_coeffs(21505, 3)`` sums to 2e-16 instead of 1, scipy/scipy#25133 and #20825) — the
#: smoothed 4.3M-point NMR spectrum was ~0 and "no peak above the noise" was found.
_FFT_WINDOW = 511


@functools.lru_cache(maxsize=8)
def _savgol_coeffs(window: int, order: int) -> np.ndarray:
    """Savitzky–Golay smoothing coefficients (value at the centre of an odd window), well conditioned.

    The least-squares polynomial is fitted on ``t = k / h`` in [-1, 1] (h = window // 2) instead of
    on the integers ±h: the Vandermonde matrix stays well conditioned (cond ~ 10 for order 3) for any
    window, and the value at the centre (t = 0) is the constant term, i.e. row 0 of the
    pseudo-inverse. Read-only and kept (a batch smooths many spectra of one length).
    """
    h = window // 2
    t = np.arange(-h, h + 1) / h
    c = np.linalg.pinv(np.vander(t, order + 1, increasing=True))[0]
    c.flags.writeable = False
    return c


def smooth(y, window: int | None = None, order: int = 3):
    """Savitzky–Golay smoothing; the default window grows with the length (n/400, >= 5).

    Windows up to :data:`_FFT_WINDOW` points: ``scipy.signal.savgol_filter`` (``mode="interp"``).
    Longer windows: the same filter through overlap-add FFT with well-conditioned coefficients
    (:func:`_savgol_coeffs`; the ends fitted as ``mode="interp"`` does), O(n log window); where
    scipy's coefficients are still accurate the two agree to ~1e-13 relative.
    """
    from scipy.signal import savgol_filter

    y = np.asarray(y, float)
    win = window if window is not None else max(5, (len(y) // 400) * 2 + 5)
    win = int(win) | 1
    if win >= len(y) or win <= order:
        return y.copy()
    if win <= _FFT_WINDOW:
        return savgol_filter(y, win, order)
    from scipy.signal import oaconvolve

    out = oaconvolve(y, _savgol_coeffs(win, order), mode="same")  # symmetric: convolution = correlation
    h = win // 2
    # the first / last h points as savgol_filter's "interp" mode has them: the polynomial fitted
    # (np.polyfit, scaled: accurate for long windows too) to the first / last window, evaluated there
    t = np.arange(win) / (win - 1)
    for sl_data, sl_out in ((slice(0, win), slice(0, h)), (slice(len(y) - win, len(y)), slice(len(y) - h, len(y)))):
        coef = np.polynomial.polynomial.polyfit(t, y[sl_data], order)
        fitted = np.polynomial.polynomial.polyval(t, coef)
        out[sl_out] = fitted[:h] if sl_out.start == 0 else fitted[-h:]
    return out


#: a working grid (binned for speed) keeps at least this many points across the narrowest line: a
#: profile sampled 10 times per FWHM is fitted as well as on a finer grid
POINTS_PER_FWHM = 10


def bin_mean(a, d: int) -> np.ndarray:
    """Means of ``d`` consecutive points along the last axis (a trailing partial block is dropped);
    ``a`` as an array when ``d <= 1``. The one binning of a working grid (model selection, whole-pattern
    fits)."""
    a = np.asarray(a)
    if d <= 1:
        return a
    m = (a.shape[-1] // d) * d
    return a[..., :m].reshape(*a.shape[:-1], -1, d).mean(axis=-1)


#: the high-passed residual's lag-1 autocorrelation may exceed white noise's by this much (noise_sigma_savgol)
SAVGOL_WHITE_TOL = 0.1


def noise_sigma_savgol(y, window: int, order: int = 7, long_window: int | None = None) -> float:
    """Noise SD from the residual of a high-order Savitzky-Golay smooth, corrected for the filter.

    The residual of a ``window``-point, order-``order`` smooth (a high order follows lines down to
    about half the window, so little of them leaks into the residual), its robust SD divided by the
    share of white noise that filter leaves (``sqrt(sum h^2)``, ``h`` the high-pass kernel). That
    correction holds for white noise only: when the residual's lag-1 autocorrelation exceeds the
    white-noise value by more than SAVGOL_WHITE_TOL (noise correlated over points, as after zero
    filling: the correction alone read 0.36x there), the larger of it and :func:`noise_sigma` of the
    residual of a ``long_window`` smooth (default 1.5x ``window``) is taken. Written here: no
    maintained library corrects a Savitzky-Golay residual's SD for the noise the filter removes.
    """
    from scipy.signal import savgol_coeffs, savgol_filter

    y = np.asarray(y, float)
    long_window = int(long_window or (int(1.5 * window) | 1))
    window = int(window) | 1
    if y.size <= max(window, long_window) or window <= order + 1:
        return noise_sigma(y)
    long = noise_sigma(y - smooth(y, window=long_window))
    h = -savgol_coeffs(window, order)
    h[window // 2] += 1.0
    cc = np.convolve(h, h[::-1])
    hp = y - savgol_filter(y, window, order)
    sd = robust_sigma(hp)
    if not sd > 0:
        return long
    r1 = 1.0 - (robust_sigma(np.diff(hp)) / np.sqrt(2.0) / sd) ** 2
    white = sd / float(np.sqrt(cc[window - 1]))
    if r1 - float(cc[window] / cc[window - 1]) > SAVGOL_WHITE_TOL:
        return max(white, long)
    return white
