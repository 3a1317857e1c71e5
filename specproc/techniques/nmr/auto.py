"""Automatic NMR mode (no peaks given): the toolkit's model selection with the NMR science as hooks.

How many lines a spectrum holds, where and how wide, is decided by
:func:`~specproc.fitting.select.select_model` (candidates from the second-derivative scale space,
forward selection by BIC with significance tests, merging of split lines, "count uncertain"
warnings). What is NMR stays here:

* **window edges** (:func:`_edge_artefacts`): signal at an edge of the spectral window is a
  digital-filter / baseline artefact or a folded line, never a species; its points are left out;
* **spinning sidebands**: a position at ``c + k rate`` of a stronger line is a satellite of that
  centre band, never a species (the ``reject`` hook refuses it, for the first candidates and for
  residual candidates alike); the final model gives every line its sidebands as satellites
  (:func:`~.sites.build`);
* the final fit of the selected lines is the NMR model (sidebands, quadrupolar context, names
  ``p1, p2...`` from high to low ppm), and a line that is no detection is dropped.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...core.errors import ProcessingError
from .sites import AUTO_MAX_SIDEBAND_ORDER, axis_step, build, fit

if TYPE_CHECKING:
    from .prepared import Prepared

#: the final fit keeps every d-th point of an oversampled (zero-filled) spectrum: at least
#: fitting.noise.POINTS_PER_FWHM points on the narrowest selected line and FINAL_MIN_POINTS points
#: (decimated, not binned: the noise SD stays that of the data; fewer, less correlated points also
#: keep the covariance errors of processed spectra less optimistic)
FINAL_MIN_POINTS = 2048


def _edge_artefacts(x, y, cands, noise):
    """Signal at the window edges: (kept candidates, excluded x ranges, artefact records).

    Two kinds: a picked maximum within its FWHM (or 2 % of the window) of an edge, and a signal
    that rises monotonically into an edge (a line or filter artefact centred at / beyond the
    edge has no maximum inside the window). The excluded range runs from the edge to 2 FWHM
    inside (4 half widths for the rising kind; at most a quarter of the window).
    """
    from ...fitting.noise import smooth

    lo, hi = float(x.min()), float(x.max())
    span = hi - lo
    keep, cut, arts = [], [], []
    for cd in cands:
        c, w = cd["center"], cd["fwhm"]
        margin = max(w, 0.02 * span)
        if c - lo <= margin:
            cut.append((lo, min(c + 2 * w, lo + 0.25 * span)))
        elif hi - c <= margin:
            cut.append((max(c - 2 * w, hi - 0.25 * span), hi))
        else:
            keep.append(cd)
            continue
        arts.append({"position_ppm": c, "fwhm_ppm": w, "excluded_ppm": [float(v) for v in cut[-1]]})
    ys = smooth(y)
    base = float(np.median(ys))
    k = max(3, int(0.02 * x.size))
    for idx in (np.arange(x.size), np.arange(x.size)[::-1]):   # from each edge inwards
        a = ys[idx] - base
        a0 = float(a[: max(2, k // 4)].mean())
        # significant at the edge and, on average, rising towards it (noise-robust)
        if a0 < 5 * noise or a[: k // 2].mean() <= a[k // 2: k].mean():
            continue
        if any(min(abs(x[idx[0]] - u), abs(x[idx[0]] - v)) < 1e-12 for u, v in cut):
            continue
        below = np.nonzero(a <= a0 / 2)[0]
        hw = int(below[0]) if below.size else x.size
        lim = max(1, min(4 * hw, x.size // 4))
        # another line rising out of the artefact's tail (> 5 sigma above the lowest point so
        # far) ends the excluded zone there
        rise = np.nonzero(a[:lim] - np.minimum.accumulate(a[:lim]) > 5 * noise)[0]
        stop = int(rise[0]) if rise.size else lim - 1
        edge, inner = float(x[idx[0]]), float(x[idx[stop]])
        cut.append((min(edge, inner), max(edge, inner)))
        arts.append({"position_ppm": edge, "fwhm_ppm": float(abs(x[idx[hw]] - edge) * 2),
                     "excluded_ppm": [float(v) for v in cut[-1]]})
    return keep, cut, arts


def _drop_undetected(best, refit, notes: list, pr: Prepared):
    """The automatic result without components that are no detection (toolkit
    :func:`~specproc.fitting.models.drop_undetected`: area within 2 standard errors of 0 or height
    below 3 noise SDs), the rest refitted; ``refit(best, names to keep) -> (Compiled, FitOutcome)``."""
    from ...fitting.fit import drop_undetected

    cur = {"best": best}

    def again(fo, weak):
        cur["best"] = refit(cur["best"], {s.name for s in cur["best"][0].sites} - set(weak))
        return cur["best"][1]

    _fo, msg = drop_undetected(best[1], again, unit="ppm", where=pr.src)
    notes += msg
    return cur["best"]


def _cut_edges(pr: Prepared, notes: list) -> list:
    """Leave edge artefacts out of ``pr`` (in place); -> the picked maxima that are not one."""
    from ...fitting.peaks import pick_peaks

    cands = pick_peaks(pr.x, pr.y, noise=pr.noise, max_peaks=64)
    cands, cut, arts = _edge_artefacts(pr.x, pr.y, cands, pr.noise)
    if cut:
        keep = np.ones(pr.x.size, bool)
        for a, b in cut:
            keep &= ~((pr.x >= a) & (pr.x <= b))
        if keep.sum() < 16:
            raise ProcessingError("only edge artefacts in the spectral window (no line to fit)", pr.src)
        pr.x, pr.y = pr.x[keep], pr.y[keep]
        pr.meta["edge_artefacts"] = arts
        pr.meta["region_ppm"] = [float(pr.x.min()), float(pr.x.max())]
        for a in arts:
            notes.append(f"signal at the window edge ({a['position_ppm']:.4g} ppm, FWHM {a['fwhm_ppm']:.3g} ppm) "
                         f"is an edge artefact, not a species: {a['excluded_ppm'][0]:.4g}..{a['excluded_ppm'][1]:.4g} "
                         f"ppm left out of the fit")
    if not cands:
        raise ProcessingError(f"no peaks found above 5x the noise level ({pr.noise:.3g})", pr.src)
    return cands


def _reject(pr: Prepared, cands: list):
    """The ``reject(center)`` hook: a position at a sideband of a stronger line (``c + k rate``,
    within that line's FWHM), or within 2 % of the window of an edge, is no species.

    The centre bands are the picked maxima that are not themselves sidebands
    (:func:`~.sidebands.recognise`, recorded in ``meta["recognised_sidebands"]``); "stronger" is
    the smoothed data at the position against the centre band's height.
    """
    from ...fitting.noise import smooth
    from .sidebands import recognise

    x, step, dx = pr.x, pr.step, axis_step(pr.x)
    xlo, xhi = float(x.min()), float(x.max())
    margin = 0.02 * (xhi - xlo)
    centres = []
    if step:
        sbs = recognise([cd["center"] for cd in cands], [cd["height"] for cd in cands], step,
                        tol_ppm=max(max(cd["fwhm"] for cd in cands), 3 * dx), max_order=AUTO_MAX_SIDEBAND_ORDER)
        if sbs:
            pr.meta["recognised_sidebands"] = [
                {"position_ppm": cands[j]["center"], "centre_band_ppm": cands[i]["center"], "order": k}
                for j, (i, k) in sbs.items()]
        centres = [(cd["center"], cd["height"], max(cd["fwhm"], 3 * dx)) for j, cd in enumerate(cands) if j not in sbs]
    xa, ya = (x[::-1], smooth(pr.y)[::-1]) if x[0] > x[-1] else (x, smooth(pr.y))

    def reject(pos: float) -> bool:
        if pos - xlo <= margin or xhi - pos <= margin:
            return True
        h = float(np.interp(pos, xa, ya))
        for c, hc, tol in centres:
            k = round((pos - c) / step)
            if k and abs(k) <= AUTO_MAX_SIDEBAND_ORDER and abs(pos - (c + k * step)) <= tol and h < hc:
                return True
        return False

    return reject


def _line_of(values: dict, shape: str, pre: str, dx: float, span: float) -> dict:
    """A fitted line as the start of the next fit: centre, FWHM, area, shape parameters."""
    from ...fitting.lineshapes import area_of, fwhm_of, get

    ln = {"center": float(values[pre + "center"]),
          "fwhm": min(max(float(fwhm_of(shape, values, pre)), 2 * dx), span / 2),
          "amplitude": max(float(area_of(shape, values, pre)), 1e-300)}
    extra = {k: float(values[pre + k]) for k in get(shape).params
             if k not in ("center", "sigma", "amplitude", "height", "fwhm") and pre + k in values}
    if "fraction" in extra:
        ln["fraction"] = float(np.clip(extra.pop("fraction"), 0.0, 1.0))
    if extra:
        ln["init"] = extra
    return ln


def _selection_text(record: dict, p) -> str:
    """``meta["model_selection"]``: one sentence of what decided the count."""
    if p.n_peaks:
        return f"n_peaks = {p.n_peaks} (the best proposals of the toolkit's model selection, no tests)"
    return (f"{record['method']} (specproc.fitting.select); {record['n_components']} component(s), "
            f"stopped: {record['stopped']}")


def select_components(pr: Prepared, p):
    """Automatic component selection (module docstring). -> (Compiled, FitOutcome, warnings)."""
    from ...fitting.models import Peak, prefix_of
    from ...fitting.noise import POINTS_PER_FWHM
    from ...fitting.select import select_model

    notes: list = []
    cands = _cut_edges(pr, notes)
    reject = _reject(pr, cands)
    sel = select_model(pr.x, pr.y, shape=p.shape, noise=pr.noise, baseline=p.baseline,
                       n_components=p.n_peaks, max_components=None if p.n_peaks else p.max_peaks,
                       reject=reject, unit="ppm", where=pr.src, n_label="n_peaks", max_label="max_peaks")
    pr.meta["selection"] = sel.record
    pr.meta["model_selection"] = _selection_text(sel.record, p)
    notes += sel.warnings
    x, y, dx = pr.x, pr.y, axis_step(pr.x)
    span = float(np.ptp(x))
    found = [_line_of(sel.fit.values, pk.shape, prefix_of(pk.name), dx, span) for pk in sel.fit.spec.peaks]
    # the final fit: the NMR model (every line with its sidebands) on every d-th point (FINAL_MIN_POINTS)
    d = max(1, min(x.size // FINAL_MIN_POINTS, int(min(ln["fwhm"] for ln in found) / dx / POINTS_PER_FWHM)))
    xf, yf = x[::d], y[::d]

    def fit_lines(lines):
        # the selection's fitted values are the starts (centre, width, area, Lorentzian fraction)
        sites = [Peak(name=f"p{i}", shape=p.shape, **ln)
                 for i, ln in enumerate(sorted(lines, key=lambda ln: -ln["center"]), 1)]
        c = build(sites, xf, yf, pr, p, above_baseline=True)
        return c, fit(c, xf, yf, pr, p)

    def lines_of(c, fo):
        return [_line_of(fo.values, s.shape, prefix_of(s.name), dx, span) for s in c.sites]

    best = fit_lines(found)
    best = _drop_undetected(best, lambda cur, keep: fit_lines(
        [lw for lw, s in zip(lines_of(*cur), cur[0].sites) if s.name in keep]), notes, pr)
    pr.meta["fit_every_nth_point"] = d
    return best[0], best[1], notes
