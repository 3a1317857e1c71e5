"""Modulus maps: invalid pixels masked and counted, statistics, histogram.

Invalid pixels: non-finite, zero or negative, above ``max_Pa`` (default 1 TPa, stiffer than
diamond), and spikes: further than ``spike_sigma`` robust SD from the median in log10(E) (moduli
spread multiplicatively). The standard error of the mean is from block means (the map split in
``blocks x blocks`` tiles), because neighbouring pixels are correlated and ``SD / sqrt(n)`` would
understate it.
"""
from __future__ import annotations

import numpy as np

from ...fitting.noise import robust_sigma


def valid_mask(E, *, max_Pa: float = 1e12, spike_sigma: float = 8.0):
    """``(valid, reasons)``: boolean map and counts per reason (``nonfinite``, ``nonpositive``,
    ``absurd``, ``spike``)."""
    E = np.asarray(E, float)
    fin = np.isfinite(E)
    pos = fin & (E > 0)
    sane = pos & (E <= max_Pa)
    valid = sane.copy()
    if sane.sum() > 10:
        le = np.log10(np.where(sane, E, 1.0))
        med = np.median(le[sane])
        s = robust_sigma(le[sane])
        if s > 0:
            valid = sane & (np.abs(le - med) <= spike_sigma * s)
    reasons = {"nonfinite": int((~fin).sum()), "nonpositive": int((fin & ~pos).sum()),
               "absurd": int((pos & ~sane).sum()), "spike": int((sane & ~valid).sum())}
    return valid, reasons


def stats(E, valid, blocks: int = 8) -> dict:
    """Mean, median, SD, percentiles (Pa), counts, and the block-mean standard error of the mean."""
    E = np.asarray(E, float)
    v = E[valid]
    if v.size == 0:
        from ...core.errors import ProcessingError

        raise ProcessingError("no valid modulus pixels")
    out = {"mean_Pa": float(v.mean()), "median_Pa": float(np.median(v)),
           "std_Pa": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n_valid": int(v.size),
           "n_invalid": int(E.size - v.size)}
    for p in (5, 25, 75, 95):
        out[f"p{p}_Pa"] = float(np.percentile(v, p))
    ny, nx = E.shape
    by, bx = max(1, ny // blocks), max(1, nx // blocks)
    means = []
    for i in range(0, ny - by + 1, by):
        for j in range(0, nx - bx + 1, bx):
            tile = valid[i:i + by, j:j + bx]
            if tile.sum() >= max(1, tile.size // 4):
                means.append(E[i:i + by, j:j + bx][tile].mean())
    if len(means) >= 4:
        out["mean_stderr_Pa"] = float(np.std(means, ddof=1) / np.sqrt(len(means)))
    else:
        out["mean_stderr_Pa"] = None
    return out


def histogram(E, valid, bins: int = 60):
    """Counts and bin edges (Pa) of the valid pixels."""
    v = np.asarray(E, float)[valid]
    counts, edges = np.histogram(v, bins=bins)
    return counts, edges
