"""Protrusion (grain) detection on a levelled height map: count, heights, areas, density.

Threshold segmentation with :func:`scipy.ndimage.label` (8-connectivity): a protrusion is a
connected region higher than ``median + max(threshold_sigma * robust SD, min_height_m)`` covering
at least ``min_area_px`` pixels. Single-pixel spikes are not protrusions: they are removed by the
levelling's outlier step and in any case fail the area test. Heights are the region's maximum above
the median surface (m), areas its pixel count times the pixel area (m^2).
"""
from __future__ import annotations

import numpy as np

from ...fitting.noise import robust_sigma


def detect(z, dx_m: float, dy_m: float, *, threshold_sigma: float = 5.0, min_height_m: float = 0.0,
           min_area_px: int = 4):
    """Detect protrusions.

    Parameters
    ----------
    z : array (ny, nx)
        Levelled heights (m).
    dx_m, dy_m : float
        Pixel sizes (m).
    threshold_sigma : float
        Threshold in robust SD of the heights above their median.
    min_height_m : float
        Lower bound on the threshold (m), for very smooth surfaces.
    min_area_px : int
        Minimum region size (pixels).

    Returns
    -------
    table : list of dict
        Per protrusion: ``id``, ``x_m``, ``y_m`` (centroid), ``height_m``, ``area_m2``,
        ``equivalent_diameter_m``, ``n_pixels``, ``touches_edge``.
    info : dict
        ``threshold_m``, ``labels`` (int array), ``sigma_m``.
    """
    from scipy import ndimage

    z = np.asarray(z, float)
    fin = np.isfinite(z)
    base = float(np.median(z[fin]))
    sigma = robust_sigma(z[fin])
    thr = max(threshold_sigma * sigma, float(min_height_m))
    above = fin & (z - base > thr)
    labels, n = ndimage.label(above, structure=np.ones((3, 3), int))
    rows = []
    if n:
        idx = np.arange(1, n + 1)
        sizes = ndimage.sum_labels(np.ones_like(z), labels, idx)
        zf = np.where(fin, z, base)
        hmax = ndimage.maximum(zf, labels, idx)
        com = ndimage.center_of_mass(above, labels, idx)
        objs = ndimage.find_objects(labels)
        keep = 0
        new = np.zeros_like(labels)
        for k, (s, h, c, sl) in enumerate(zip(sizes, hmax, com, objs), start=1):
            if s < min_area_px:
                continue
            keep += 1
            new[labels == k] = keep
            edge = sl[0].start == 0 or sl[1].start == 0 or sl[0].stop == z.shape[0] or sl[1].stop == z.shape[1]
            area = float(s) * dx_m * dy_m
            rows.append({"id": keep, "x_m": (c[1] + 0.5) * dx_m, "y_m": (c[0] + 0.5) * dy_m,
                         "height_m": float(h - base), "area_m2": area,
                         "equivalent_diameter_m": float(2 * np.sqrt(area / np.pi)), "n_pixels": int(s),
                         "touches_edge": bool(edge)})
        labels = new
    return rows, {"threshold_m": thr, "labels": labels, "sigma_m": sigma, "base_m": base}
