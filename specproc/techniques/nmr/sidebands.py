"""Spinning sidebands: positions, the orders inside a region, recognition among picked peaks.

Under magic-angle spinning at ``rate`` Hz, a centre band at ``c`` ppm has sidebands at
``c + k * rate / sf_mhz`` ppm (k = ±1, ±2, ...). In a deconvolution they are components tied
to their centre band (same width and shape, centre = centre band + k * rate_ppm, own area
>= 0), and their areas are credited to the centre band.
"""
from __future__ import annotations

import numpy as np


def rate_ppm(mas_rate_hz: float, sf_mhz: float) -> float:
    """Spinning rate in ppm (Hz / MHz = ppm)."""
    return float(mas_rate_hz) / float(sf_mhz)


def orders_in_region(center: float, step_ppm: float, region: tuple[float, float],
                     max_order: int | None = None) -> list[int]:
    """Non-zero orders k with ``center + k * step_ppm`` inside ``region`` (ppm)."""
    if not step_ppm or step_ppm <= 0:
        return []
    lo, hi = min(region), max(region)
    kmin = int(np.ceil((lo - center) / step_ppm))
    kmax = int(np.floor((hi - center) / step_ppm))
    ks = [k for k in range(kmin, kmax + 1) if k != 0]
    if max_order is not None:
        ks = [k for k in ks if abs(k) <= max_order]
    return ks


def recognise(centers: list[float], heights: list[float], step_ppm: float, tol_ppm: float,
              max_order: int = 8) -> dict[int, tuple[int, int]]:
    """Picked peaks that sit at a sideband position of a stronger peak.

    Returns ``{index_of_sideband: (index_of_centre_band, order)}``; a peak is only explained
    by a strictly stronger peak that is not itself a sideband.
    """
    out: dict[int, tuple[int, int]] = {}
    if not step_ppm or step_ppm <= 0:
        return out
    order = np.argsort(heights)[::-1]
    for rank, j in enumerate(order):
        for i in order[:rank]:
            if i in out or heights[i] <= heights[j]:
                continue
            k = (centers[j] - centers[i]) / step_ppm
            kr = int(round(k))
            if kr != 0 and abs(kr) <= max_order and abs(centers[j] - (centers[i] + kr * step_ppm)) <= tol_ppm:
                out[int(j)] = (int(i), kr)
                break
    return out
