"""FTIR processing: absorbance <-> transmittance, saturation, baselines (pybaselines).

Measurements (see ``docs/ftir.md``): dim ``wavenumber`` (1/cm, ascending from the readers),
``attrs["acquisition"]["y_kind"]`` ``"absorbance"`` or ``"transmittance"`` (a 0-1 fraction).
"""
from __future__ import annotations

import numpy as np

from ...core.errors import ParameterError, ProcessingError

#: pybaselines methods offered by name (``baseline=``) and their default keyword arguments.
#: ``lam`` of the Whittaker smoothers is given for 1 cm-1 spacing and scaled by spacing^-4 (the
#: penalty is on second differences per point), so the baseline's stiffness is the same in cm-1
#: whatever the sampling; override with ``baseline_params``.
BASELINES = {
    "asls": {"lam": 1e7, "p": 0.001},
    "arpls": {"lam": 1e7},
    "modpoly": {"poly_order": 2},
    "rubberband": {},
}
#: baselines fitted inside the band model (their uncertainty is part of the fit covariance)
MODEL_BASELINES = ("none", "constant", "linear", "quadratic")


def y_kind(m) -> str:
    """``"absorbance"`` / ``"transmittance"`` / ... of a measurement (absorbance when unknown)."""
    return str((m.attrs.get("acquisition") or {}).get("y_kind") or "absorbance")


def to_absorbance(t, floor: float = 0.0):
    """Absorbance ``-log10(T)`` of a transmittance fraction; NaN where ``T <= floor`` (saturated)."""
    t = np.asarray(t, float)
    out = np.full(t.shape, np.nan)
    ok = t > floor
    out[ok] = -np.log10(t[ok])
    return out


def to_transmittance(a):
    """Transmittance fraction ``10**-A`` of an absorbance."""
    return 10.0 ** (-np.asarray(a, float))


def as_absorbance(m):
    """``(x, A, kind, notes)``: the measurement's axis and values as absorbance (ascending x)."""
    kind = y_kind(m)
    x = np.asarray(m.coords[m.dims[-1]].values, float)
    y = np.asarray(m.values, float)
    if m.ndim != 1:
        raise ProcessingError(f"expected one spectrum, got dims {m.dims}", _src(m))
    if m.dims[-1] != "wavenumber":
        raise ProcessingError(f"axis is {m.dims[-1]!r}, not wavenumber (an interferogram or phase block?)", _src(m))
    notes = []
    if kind == "transmittance":
        y = to_absorbance(y)
        notes.append("converted from transmittance (A = -log10 T)")
    elif kind != "absorbance":
        raise ProcessingError(f"y values are {kind!r}; band fitting needs absorbance or transmittance "
                              "(read the AB or TR block)", _src(m))
    order = np.argsort(x, kind="stable")
    return x[order], y[order], kind, notes


def saturation_mask(x, a, kind: str = "absorbance", raw=None, min_run: int = 3, dilate_cm1: float = 4.0,
                    limit: float | None = None):
    """Points of saturated bands (not usable for fitting).

    A band is saturated when the detector saw (almost) no light: a transmittance <= 0
    (``a`` NaN after conversion), or an absorbance clipped at the instrument's limit, which shows
    as a run of ``min_run`` or more consecutive points equal to the spectrum's maximum (OPUS
    clips at e.g. 6.0), or values >= ``limit`` when given. The flanks within ``dilate_cm1`` of a
    saturated run are distorted too and are included.

    Returns
    -------
    mask : bool array
    runs : list of (lo, hi) cm-1 ranges of the saturated runs
    """
    x = np.asarray(x, float)
    a = np.asarray(a, float)
    sat = ~np.isfinite(a)
    fin = a[np.isfinite(a)]
    if fin.size:
        top = float(fin.max())
        flat = np.isfinite(a) & (np.abs(a - top) <= 1e-9 * max(abs(top), 1.0))
        sat |= _runs_at_least(flat, min_run) if top > 0 else np.zeros_like(flat)
    if limit is not None:
        sat |= np.isfinite(a) & (a >= limit)
    if not sat.any():
        return sat, []
    dx = float(np.median(np.abs(np.diff(x)))) or 1.0
    k = int(np.ceil(dilate_cm1 / dx))
    grown = np.convolve(sat.astype(int), np.ones(2 * k + 1, int), mode="same") > 0 if k else sat
    return grown, _ranges(x, grown)


def _runs_at_least(flags, n):
    out = np.zeros_like(flags)
    i = 0
    while i < flags.size:
        if flags[i]:
            j = i
            while j < flags.size and flags[j]:
                j += 1
            if j - i >= n:
                out[i:j] = True
            i = j
        else:
            i += 1
    return out


def _ranges(x, mask):
    """Contiguous True runs of ``mask`` as (lo, hi) axis ranges."""
    out = []
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return out
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]]
    for s, e in zip(starts, ends):
        out.append((float(x[s]), float(x[e])))
    return out


def baseline(x, y, method: str, mask=None, **params):
    """Baseline of ``y`` with a pybaselines method.

    Parameters
    ----------
    x, y : arrays (n,)
        Ascending wavenumbers (cm-1) and absorbance.
    method : {"asls", "arpls", "modpoly", "rubberband"}
    mask : bool array (n,), optional
        Points to ignore (atmospheric lines, saturated bands): the baseline is computed on the
        other points and interpolated across these.
    **params
        pybaselines keyword arguments (``lam``, ``p``, ``poly_order``...).

    Returns
    -------
    array (n,)
    """
    from ...fitting.baselines import baseline as background

    if method not in BASELINES:
        names = ", ".join(list(BASELINES) + list(MODEL_BASELINES))
        raise ParameterError(f"unknown baseline {method!r}; one of {names}")
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    keep = np.isfinite(y) if mask is None else (~np.asarray(mask, bool) & np.isfinite(y))
    if keep.sum() < 5:
        raise ProcessingError("fewer than 5 usable points for the baseline")
    kw = dict(BASELINES[method])
    if "lam" in kw:
        dx = float(np.median(np.abs(np.diff(x)))) or 1.0
        kw["lam"] = kw["lam"] / dx ** 4
    kw.update(params)
    # the one registry of backgrounds (pybaselines underneath); FTIR keeps only its defaults
    return background(x, y, method, mask=~keep, **kw)[0]


def _src(m):
    return (m.attrs.get("provenance") or {}).get("source")


#: noise high-pass (:func:`noise_sd`): a Savitzky-Golay window of this many resolutions, this order
NOISE_WINDOW_RES, NOISE_ORDER = 4.0, 7


def noise_sd(y, resolution: float, dx: float) -> float:
    """Noise SD of an FTIR absorbance segment (ascending, evenly spaced by ``dx`` cm-1): the toolkit's
    :func:`~specproc.fitting.noise.noise_sigma_savgol` with a window of NOISE_WINDOW_RES resolutions
    (order NOISE_ORDER: it follows bands down to ~2x the resolution) and, for correlated noise, the
    6x-resolution high-pass as the floor. On the random-truth sweep's spectra (white noise) the
    6x-resolution estimate alone ran 1.08x the true SD (median; 1.28x p90), bands leaking into it;
    this one 1.005x (1.12x)."""
    from ...fitting.noise import noise_sigma_savgol

    win = max(NOISE_ORDER + 2, int(round(NOISE_WINDOW_RES * resolution / dx)) | 1)
    return noise_sigma_savgol(y, win, NOISE_ORDER, long_window=max(7, int(round(6 * resolution / dx)) | 1))
