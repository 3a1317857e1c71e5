"""Pattern-level processing: background (pybaselines SNIP), Bragg's law, amorphous hint.

Background choice: SNIP (Ryan et al., NIM B 34 (1988) 396; pybaselines ``snip``) with its
window set from a *physical* width (``background_window_deg``, default 1.5° 2θ): anything
narrower than the window (Bragg peaks) is excluded from the background, anything broader
(air scatter, sample holder, amorphous humps) is kept in it. That is what the amorphous hint
needs: the hump lives in the background, the crystalline signal above it.
"""
from __future__ import annotations

import numpy as np


def bragg_d(two_theta_deg, wavelength_nm):
    """d-spacing (nm) from 2θ (deg): d = λ / (2 sin θ)."""
    return wavelength_nm / (2 * np.sin(np.radians(np.asarray(two_theta_deg, float) / 2)))


def bragg_d_stderr(two_theta_deg, two_theta_stderr_deg, wavelength_nm):
    """Standard error of d (nm) propagated from the 2θ standard error: |∂d/∂θ| σθ, σθ = σ2θ/2."""
    th = np.radians(np.asarray(two_theta_deg, float) / 2)
    sth = np.radians(np.asarray(two_theta_stderr_deg, float) / 2)
    return np.abs(wavelength_nm * np.cos(th) / (2 * np.sin(th) ** 2)) * sth


def bragg_two_theta(d_nm, wavelength_nm):
    """2θ (deg) of a d-spacing (nm); NaN where λ/2d > 1."""
    s = wavelength_nm / (2 * np.asarray(d_nm, float))
    with np.errstate(invalid="ignore"):
        return np.where(s < 1, 2 * np.degrees(np.arcsin(np.clip(s, -1, 1))), np.nan)


def kalpha2_position(two_theta_deg, lambda1_nm, lambda2_nm):
    """2θ (deg) of the Kα2 line of a reflection whose Kα1 line is at ``two_theta_deg``."""
    s = np.sin(np.radians(np.asarray(two_theta_deg, float) / 2)) * lambda2_nm / lambda1_nm
    return 2 * np.degrees(np.arcsin(np.clip(s, -1, 1)))


def background(x, y, window_deg: float = 1.5, smooth_points: int | None = None, log: bool = False):
    """SNIP background (pybaselines) with a window of ``window_deg`` (deg 2θ).

    ``log=True`` runs SNIP on log(1 + y) (the log transform of Ryan et al.'s LLS operator): a
    high-resolution scan spans 6–8 decades, and a linear-scale SNIP under a 10⁸-count substrate
    reflection overshoots the data by orders of magnitude around it.

    Returns
    -------
    ndarray
        Background, same shape as ``y``.
    """
    from pybaselines import Baseline

    step = float(np.median(np.abs(np.diff(x))))
    hw = min(max(int(round(window_deg / step)), 3), (len(y) - 1) // 2)  # pybaselines caps it anyway
    sm = smooth_points if smooth_points is not None else max(int(round(0.05 / step)), 1)
    if log:
        ly = np.log1p(np.clip(y, 0, None))
        bl, _ = Baseline(x_data=x).snip(ly, max_half_window=hw, decreasing=True, smooth_half_window=sm, filter_order=2)
        return np.minimum(np.expm1(bl), y.max())
    # filter_order=4 follows curved humps (amorphous scattering) that order 2 cuts under.
    # The counting noise is smoothed ONCE before SNIP: pybaselines' ``smooth_half_window`` re-smooths
    # the baseline at every one of the ~window/step iterations, which blurs neighbouring peaks into
    # the valleys of a dense pattern (a baseline 50-70 % above the data between reflection clusters)
    from scipy.ndimage import uniform_filter1d

    ys = uniform_filter1d(y, 2 * sm + 1, mode="nearest") if sm > 0 else y
    bl, _ = Baseline(x_data=x).snip(ys, max_half_window=hw, decreasing=True, filter_order=4)
    return np.minimum(bl, y.max())


def amorphous_hint(x, y, bg, crystalline_area: float | None = None, edge_deg: float = 2.0):
    """Area of a broad hump in the background relative to the total scattered (hump + crystalline) area.

    The hump is the background above the straight line joining its two ends (averaged over
    ``edge_deg`` at each end), clipped at zero. Air scatter rising at low angle is therefore not
    counted; a hump in the middle of the scan is. A *hint* (no absolute amorphous content
    without an internal standard).

    Returns
    -------
    fraction, hump_area, hump_center_deg
    """
    step = float(np.median(np.diff(x)))
    n = max(int(edge_deg / step), 3)
    if x[-1] - x[0] < 4 * edge_deg or len(x) < 4 * n:
        return 0.0, 0.0, None  # too short a scan to tell a hump from the background's ends
    x0, x1 = x[:n].mean(), x[-n:].mean()
    y0, y1 = bg[:n].mean(), bg[-n:].mean()
    line = y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    hump = np.clip(bg - line, 0, None)
    ha = float(np.trapezoid(hump, x)) if hasattr(np, "trapezoid") else float(np.trapz(hump, x))
    if crystalline_area is None:
        net = np.clip(y - bg, 0, None)
        crystalline_area = float(np.sum(net) * step)
    tot = ha + max(crystalline_area, 0.0)
    # a hump below the noise-level (a few % of the background) is not a hump
    if ha < 0.02 * float(np.mean(bg)) * float(x[-1] - x[0]):
        return 0.0, ha, None
    return (ha / tot if tot > 0 else 0.0), ha, float(x[int(np.argmax(hump))])
