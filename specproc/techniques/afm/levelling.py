"""Height-map levelling: plane / polynomial background, scan-line (row) alignment, outliers and scars.

Written with numpy / scipy.ndimage: no maintained Python package does SPM levelling as a library
call (Gwyddion's algorithms live in its C modules; pySPM pulls IPython and seaborn). The methods
are Gwyddion's standard ones:

* plane / polynomial background by least squares, iterated with the pixels further than 3 robust
  SD from the surface excluded, so protrusions and pits do not tilt the background;
* row alignment: each scan line shifted by its median (robust to features covering < half a line);
* outliers: single-pixel spikes and scan-line scars (see :func:`remove_outliers`), replaced and
  counted.

All functions take and return 2D float arrays ``(ny, nx)`` (NaN = missing, kept NaN).
"""
from __future__ import annotations

import numpy as np

from ...fitting.noise import robust_sigma

LEVEL_METHODS = ("plane", "poly2", "rows", "none")


def _design(ny, nx, order):
    yy, xx = np.mgrid[0:ny, 0:nx]
    u = (xx / max(nx - 1, 1)) * 2 - 1
    v = (yy / max(ny - 1, 1)) * 2 - 1
    cols = [u ** i * v ** j for i in range(order + 1) for j in range(order + 1 - i)]
    return np.stack([c.ravel() for c in cols], axis=1)


def polynomial_background(z, order: int = 1, n_iter: int = 5, clip: float = 3.0):
    """Least-squares polynomial surface of total ``order`` (1 = plane), robust to features.

    Returns
    -------
    background : ndarray (ny, nx)
    """
    z = np.asarray(z, float)
    A = _design(*z.shape, order)
    zz = z.ravel()
    use = np.isfinite(zz)
    bg = np.zeros_like(zz)
    for _ in range(max(1, n_iter)):
        coef, *_ = np.linalg.lstsq(A[use], zz[use], rcond=None)
        bg = A @ coef
        r = zz - bg
        s = robust_sigma(r[use])
        new = np.isfinite(zz) & (np.abs(r - np.nanmedian(r)) <= clip * s) if s > 0 else use
        if new.sum() < A.shape[1] * 4 or np.array_equal(new, use):
            break
        use = new
    return bg.reshape(z.shape)


def align_rows(z):
    """Subtract each row's median (scan-line offsets). Returns (aligned, offsets per row)."""
    z = np.asarray(z, float)
    # all-NaN lines get offset 0; they are left out of nanmedian (which warns for them, and
    # silencing that with warnings.catch_warnings is not thread-safe)
    off = np.zeros(z.shape[0])
    some = np.isfinite(z).any(axis=1)
    if some.any():
        off[some] = np.nanmedian(z[some], axis=1)
    return z - off[:, None], off


def remove_outliers(z, outlier_sigma: float = 6.0, scar_min_px: int = 8):
    """Replace single-pixel spikes and scan-line scars by the local 3 x 3 median.

    A **spike** stands out from *every* one of its 8 neighbours by more than ``outlier_sigma``
    robust SD of the nearest-neighbour height differences and by more than half its own excess over the local
    median — the second test keeps the sharp summit of a real protrusion, whose neighbours follow it.
    A **scar** is a run of at least ``scar_min_px`` pixels along a scan line that all stand out from
    both vertical neighbours in the same direction (a real feature is not one line tall); runs covering
    more than half a line are a line offset, left to :func:`align_rows`.

    Returns
    -------
    cleaned : ndarray
    mask : ndarray of bool (True = replaced)
    """
    from scipy import ndimage

    z = np.asarray(z, float)
    fin = np.isfinite(z)
    filled = np.where(fin, z, np.nanmedian(z) if fin.any() else 0.0)
    med = ndimage.median_filter(filled, size=3, mode="nearest")
    r = filled - med
    # scale: robust SD of nearest-neighbour differences (the surface's own pixel-to-pixel variation)
    s = robust_sigma(np.concatenate([np.diff(filled, axis=0).ravel(), np.diff(filled, axis=1).ravel()]))
    if s <= 0:
        return z.copy(), np.zeros(z.shape, bool)
    thr = outlier_sigma * s
    foot = np.ones((3, 3), bool)
    foot[1, 1] = False
    nmax = ndimage.maximum_filter(filled, footprint=foot, mode="nearest")
    nmin = ndimage.minimum_filter(filled, footprint=foot, mode="nearest")
    up_ex, dn_ex = filled - nmax, nmin - filled
    spikes = ((up_ex > thr) & (up_ex > 0.5 * r)) | ((dn_ex > thr) & (dn_ex > -0.5 * r))
    # scars
    up = np.vstack([filled[:1], filled[:-1]])
    dn = np.vstack([filled[1:], filled[-1:]])
    hi = (filled - np.maximum(up, dn)) > thr
    lo = (np.minimum(up, dn) - filled) > thr
    scars = np.zeros(z.shape, bool)
    for cand in (hi, lo):
        lab, n = ndimage.label(cand, structure=np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]]))
        if n:
            sizes = ndimage.sum_labels(cand, lab, np.arange(1, n + 1))
            ok = (sizes >= scar_min_px) & (sizes <= z.shape[1] / 2)
            scars |= ok[np.maximum(lab - 1, 0)] & (lab > 0)
    mask = (spikes | scars) & fin
    out = z.copy()
    # scars replaced from the lines above and below (the 3 x 3 median contains the scar itself)
    out[scars & fin] = ((up + dn) / 2)[scars & fin]
    out[spikes & fin & ~scars] = med[spikes & fin & ~scars]
    return out, mask


def level(z, method: str = "rows", outlier_sigma: float | None = 6.0):
    """Level a height map.

    Parameters
    ----------
    z : array (ny, nx)
        Heights (m).
    method : {"plane", "poly2", "rows", "none"}
        ``plane``: robust plane; ``poly2``: robust 2nd-order polynomial; ``rows``: robust plane,
        then scan-line median alignment, then the plane again.
    outlier_sigma : float or None
        Spike / scar threshold in robust SD of the 3 x 3 median residual (None: keep them).

    Returns
    -------
    levelled : ndarray (ny, nx)
        Heights relative to the levelled surface's median (m).
    info : dict
        ``n_outliers``, ``outlier_mask``, ``method``.
    """
    if method not in LEVEL_METHODS:
        from ...core.errors import ParameterError

        raise ParameterError(f"unknown levelling {method!r}; one of {', '.join(LEVEL_METHODS)}")
    z = np.asarray(z, float)

    def background(z):
        if method == "poly2":
            return z - polynomial_background(z, 2)
        if method in ("plane", "rows"):
            z = z - polynomial_background(z, 1)
            if method == "rows":
                z, _ = align_rows(z)
                z = z - polynomial_background(z, 1)
        return z

    # the robust background fits ignore spikes; spikes and scars are found on the levelled surface
    # (a tilt or line offsets would otherwise hide them or look like them), then the background is
    # fitted again without them
    z = background(z)
    mask = np.zeros(z.shape, bool)
    if outlier_sigma is not None:
        z, mask = remove_outliers(z, outlier_sigma)
        z = background(z)
    z = z - np.nanmedian(z)
    return z, {"n_outliers": int(mask.sum()), "outlier_mask": mask, "method": method}
