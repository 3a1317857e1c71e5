"""Galvanostatic Li|SE|Li cycling: critical current density (stepped currents) and overpotential.

**Half-cycles** are the runs of one current sign with ``|I|`` above 5 % of its maximum (rests
excluded); each has a current density ``j = |I| / A`` (median over the run) and an
**overpotential** ``eta``: the median ``|E|`` over its second half (the plateau, after the
concentration and interfacial transients of the first half).

**The critical current density rule** (stated in the result): a half-cycle *fails* when its voltage

* **collapses** — the ``|E|`` smoothed over 5 points falls below ``collapse_fraction`` (0.5) of the
  expected overpotential for 3 points or more after the half-cycle's first 10 %, or
* **turns noisy** — the robust noise SD of ``E`` within the half-cycle (toolkit
  :func:`~specproc.fitting.noise.noise_sigma`) exceeds ``noise_fraction`` (0.25) of it,

where the expected overpotential scales the last stable half-cycle's area-specific resistance
``eta / j`` to the new ``j`` (ohmic). The CCD is the current density of the first failing
half-cycle (the literature's "short circuit at j"); the last stable level is reported with it.
No failure: the CCD is above the highest level (a lower bound and a warning). For cycling at one
current, the same rule detects a short circuit; overpotentials are summarised over the stable part.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import ParameterError, ProcessingError
from .common import source

SMOOTH_POINTS = 5
MIN_RUN = 3


def half_cycles(t, e, i, area_cm2: float) -> list[dict]:
    """Runs of one current sign (|I| > 5 % of max): start/end index, current density (mA/cm²), eta (V)."""
    thr = 0.05 * np.max(np.abs(i))
    sign = np.where(np.abs(i) > thr, np.sign(i), 0)
    edges = np.nonzero(np.diff(sign) != 0)[0] + 1
    bounds = np.concatenate([[0], edges, [sign.size]])
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if sign[a] == 0 or b - a < 4:
            continue
        j = float(np.median(np.abs(i[a:b]))) / area_cm2 * 1e3
        mid = a + (b - a) // 2
        out.append({"start": int(a), "end": int(b), "sign": int(sign[a]), "j_mA_cm2": j,
                    "eta_V": float(np.median(np.abs(e[mid:b]))), "t_start_h": float(t[a] / 3600),
                    "t_end_h": float(t[b - 1] / 3600)})
    return out


def _levels(js: np.ndarray) -> np.ndarray:
    """Level index of each half-cycle: current densities within 3 % are one level."""
    lev = np.zeros(js.size, int)
    for k in range(1, js.size):
        lev[k] = lev[k - 1] if abs(js[k] / js[k - 1] - 1) < 0.03 else lev[k - 1] + 1
    return lev


def _fails(e_seg: np.ndarray, expected: float, collapse_fraction: float, noise_fraction: float):
    """(failed?, why) of one half-cycle against its expected overpotential."""
    from ...fitting.noise import noise_sigma

    a = np.abs(e_seg)
    n = a.size
    if n >= SMOOTH_POINTS:
        a = np.convolve(a, np.ones(SMOOTH_POINTS) / SMOOTH_POINTS, mode="same")
    body = a[max(1, n // 10):n - SMOOTH_POINTS // 2]
    low = body < collapse_fraction * expected
    run = 0
    for v in low:
        run = run + 1 if v else 0
        if run >= MIN_RUN:
            return True, f"voltage collapsed below {collapse_fraction:g} x the expected {1000 * expected:.0f} mV"
    sd = noise_sigma(e_seg) if e_seg.size >= 8 else 0.0
    if sd > noise_fraction * expected:
        return True, f"voltage noise {1000 * sd:.1f} mV is above {noise_fraction:g} x the expected {1000 * expected:.0f} mV"
    return False, ""


def analyse(m, *, area_cm2: float | None, collapse_fraction: float = 0.5, noise_fraction: float = 0.25) -> dict:
    """CCD (stepped currents) or overpotential / short circuit (one current) of a cycling time series."""
    where = source(m)
    if area_cm2 is None:
        raise ParameterError("cycling analysis needs the electrode area (area_cm2 / --area-cm2) for current "
                             "densities", where)
    t = np.asarray(m.coords["time"].values, float)
    e = np.asarray(m.sel(channel="potential").values, float)
    i = np.asarray(m.sel(channel="current").values, float)
    hc = half_cycles(t, e, i, area_cm2)
    if len(hc) < 2:
        raise ProcessingError(f"{len(hc)} half-cycle(s) of constant current found: not a galvanostatic cycling "
                              "record (plating/stripping alternating in sign)", where)
    js = np.array([h["j_mA_cm2"] for h in hc])
    lev = _levels(js)
    stepped = lev.max() >= 2 and np.all(np.diff([js[lev == k].mean() for k in range(lev.max() + 1)]) > 0)
    asr = None
    failed_at = None
    for k, h in enumerate(hc):
        seg = e[h["start"]:h["end"]]
        expected = asr * h["j_mA_cm2"] if asr is not None else h["eta_V"]
        bad, why = (False, "") if asr is None else _fails(seg, expected, collapse_fraction, noise_fraction)
        h["failed"], h["why"] = bad, why
        if bad:
            failed_at = k
            break
        asr = h["eta_V"] / h["j_mA_cm2"]
    stable = hc[:failed_at] if failed_at is not None else hc
    eta = np.array([h["eta_V"] for h in stable]) * 1000
    out = {"stepped": bool(stepped), "half_cycles": hc[:failed_at + 1] if failed_at is not None else hc,
           "levels_mA_cm2": sorted({round(float(x), 4) for x in js}), "t": t, "E": e, "I": i, "warnings": [],
           "rule": f"failure = |E| below {collapse_fraction:g} x expected (ASR of the last stable half-cycle x j) for "
                   f">= {MIN_RUN} points, or noise SD > {noise_fraction:g} x expected; CCD = j of the first failure"}
    if failed_at is not None:
        h = hc[failed_at]
        prev = [x["j_mA_cm2"] for x in hc[:failed_at] if x["j_mA_cm2"] < h["j_mA_cm2"] * 0.97]
        out.update(short=True, short_time_h=h["t_start_h"], failure=h["why"], ccd_mA_cm2=h["j_mA_cm2"] if stepped
                   else None, last_stable_mA_cm2=(max(prev) if prev else None))
    else:
        out.update(short=False, ccd_mA_cm2=None, last_stable_mA_cm2=float(js.max()) if stepped else None)
        if stepped:
            out["warnings"].append(f"no failure up to {js.max():.3g} mA/cm²: the CCD is above the highest current")
    if not stepped:
        out["j_mA_cm2"] = float(np.median(js))
        out["duration_h"] = float(stable[-1]["t_end_h"] - stable[0]["t_start_h"]) if stable else 0.0
        nb = max(1, len(eta) // 20)
        out.update(eta_mV=float(np.median(eta)), eta_first_mV=float(np.median(eta[:nb])),
                   eta_last_mV=float(np.median(eta[-nb:])), eta_sd_mV=float(np.std(eta)))
        if failed_at is not None:
            out["warnings"].append(f"short circuit at {hc[failed_at]['t_start_h']:.1f} h: {hc[failed_at]['why']}")
    else:
        out["eta_mV"] = float(np.median(eta)) if eta.size else None
    return out
