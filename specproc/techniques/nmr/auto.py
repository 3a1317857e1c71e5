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
  ``p1, p2...`` from high to low ppm), and a line that is no detection is dropped;
* **the noise SD** of the automatic mode (:func:`_local_noise`): a spinning cluster and its
  sidebands keep Lorentzian wings above the noise over most of the window, which the prepared
  (clipped) estimate took for noise;
* **a hidden pair inside a cluster** (:func:`_split_hidden_pairs`): where the toolkit's resolution
  check (:mod:`specproc.fitting.resolution`) found a pair that fits better by more than a
  component is worth, the line is replaced by that pair before the final fit;
* **sidebands of selected lines** (:func:`_drop_sidebands`): a selected line at ``c + k rate`` of a
  stronger selected line is its satellite, not a species.
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
#: a line is split into the pair the resolution check prefers only inside a cluster: another line
#: within this many FWHM (of the wider)
CLUSTER_FWHM = 2.0


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


def _local_noise(y, seg: int = 128) -> float | None:
    """Noise SD from short segments each with its own quadratic removed (None: too few points).

    A spectrum full of lines (a spinning cluster and its sidebands, Lorentzian wings above the
    noise over most of the window) has too few points on a straight baseline: the clipped
    estimate (:func:`~specproc.fitting.noise.noise_sigma`) took their wings for noise, up to 2.6x
    the true SD on generated MAS spectra, and the selection's noise correlation length then read
    white noise as L = 16 (a chi² gain 16x too small). Here each segment of ``seg`` points loses
    its own quadratic (the wings are smooth there), the segments without a line (MAD within 1.3x
    of the quietest quarter's) are pooled, and the SD is corrected for what the quadratic took from
    the noise with the noise autocorrelation measured on those residuals (``n / (n - tr(H R))``);
    segments grow x2 while the correlation length exceeds 1/24 of them (processed spectra).
    Written here: no maintained library estimates a correlated noise SD between many lines.
    """
    from scipy.linalg import toeplitz

    from ...fitting.noise import robust_sigma

    y = np.asarray(y, float)
    while y.size // seg >= 8:
        nseg = y.size // seg
        rows = y[: nseg * seg].reshape(nseg, seg)
        v = np.vander(np.linspace(-1.0, 1.0, seg), 3)
        hat = v @ np.linalg.pinv(v)
        r = rows - rows @ hat.T
        mad = 1.4826 * np.median(np.abs(r - np.median(r, axis=1, keepdims=True)), axis=1)
        clean = r[mad <= 1.3 * np.percentile(mad, 25)]
        c0 = float(np.mean(clean * clean))
        if not c0 > 0:
            return None
        rho = [1.0]
        for k in range(1, min(64, seg // 4)):
            rk = float(np.mean(clean[:, k:] * clean[:, :-k])) / c0
            if rk < 0.05:
                break
            rho.append(rk)
        if 1 + 2 * sum(rho[1:]) > seg / 24 and y.size // (2 * seg) >= 8:
            seg *= 2
            continue
        corr = toeplitz(np.r_[rho, np.zeros(seg - len(rho))])
        return float(robust_sigma(clean.ravel()) * np.sqrt(seg / (seg - np.trace(hat @ corr))))
    return None


def _selection_noise(pr: Prepared) -> float:
    """The noise SD the automatic mode works with: :func:`_local_noise`, never above the prepared
    estimate and never below the first-difference (white-noise) one."""
    from ...fitting.noise import noise_sigma_diff

    loc = _local_noise(pr.y)
    if loc is None:
        return pr.noise
    return float(min(pr.noise, max(loc, noise_sigma_diff(pr.y))))


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


def _split_hidden_pairs(found: list, record: dict, pr: Prepared, reject=None) -> list:
    """Lines under which the toolkit's resolution check (:mod:`specproc.fitting.resolution`, recorded
    in the selection's steps) found a pair that fits better by more than a component is worth
    (BIC: ``IC_MIN + 3 ln(n / L)`` for the pair's 3 more parameters on its ``n`` points): replaced by
    that pair, as starts of the final fit (which then judges every line: ``_drop_undetected``);
    never a line of the pair at a position ``reject`` refuses (a sideband of a stronger line).
    Two neighbours ~1 FWHM apart in a crowded cluster, fitted as one while selecting (their signal
    shared out among the others), were the resolvable misses of the sweep: only a line with another
    within ``CLUSTER_FWHM`` of their FWHM is split."""
    from ...fitting.select import IC_MIN

    L = float(record.get("noise_correlation_length") or 1.0)
    splits = []
    for st in record.get("steps", []):
        r = st.get("resolution_check") if isinstance(st, dict) else None
        if not r or r.get("delta") is None or not r.get("pair") or "amplitude" not in r["pair"][0]:
            continue
        if not r["delta"] < -(IC_MIN + 3 * np.log(max(r.get("n_points", 16) / L, 2.0))):
            continue
        if not any(0 < abs(ln["center"] - r["center"]) < CLUSTER_FWHM * max(ln["fwhm"], r["fwhm"]) for ln in found):
            continue          # an isolated line: the selection had a clean look at it (a pair preferred
            # there is as likely its lineshape: a real 13C CP envelope is no pseudo-Voigt)
        if reject is not None and any(reject(float(q["center"])) for q in r["pair"]):
            continue          # a line of the pair at a sideband position (or the window edge): no species
        j = min(range(len(found)), key=lambda i: abs(found[i]["center"] - r["center"]), default=None)
        if j is None or abs(found[j]["center"] - r["center"]) > 0.1 * found[j]["fwhm"]:
            continue
        line = found.pop(j)
        for q in r["pair"]:
            found.append({**line, "center": float(q["center"]), "fwhm": float(q["fwhm"]),
                          "amplitude": max(float(q["amplitude"]), 1e-300)})
        splits.append({"at_ppm": r["center"], "into_ppm": [q["center"] for q in r["pair"]], "delta_chi2": r["delta"]})
    if splits:
        pr.meta["split_pairs"] = splits
    return found


def _drop_sidebands(found: list, pr: Prepared) -> list:
    """Selected lines that sit at a sideband position of a stronger selected line (``c + k rate``
    within the wider of the two FWHM, ``k`` up to AUTO_MAX_SIDEBAND_ORDER): its satellites, never
    species (the final fit gives every line its sidebands). The ``reject`` hook judges positions
    against the picked maxima only; a broad line under the cluster is no maximum, and its sidebands
    (a real 1H MAS spectrum: 10.3 ppm beside the 0.8 ppm line at 10 ppm per order) came out as species."""
    step = pr.step
    if not step or len(found) < 2:
        return found
    strength = [ln["amplitude"] / ln["fwhm"] for ln in found]
    out, gone = [], []
    for i, ln in enumerate(found):
        for j, g in enumerate(found):
            k = round((ln["center"] - g["center"]) / step)
            if j != i and strength[j] > strength[i] and k and abs(k) <= AUTO_MAX_SIDEBAND_ORDER and \
                    abs(ln["center"] - (g["center"] + k * step)) <= max(ln["fwhm"], g["fwhm"]):
                gone.append({"position_ppm": ln["center"], "centre_band_ppm": g["center"], "order": int(k)})
                break
        else:
            out.append(ln)
    if gone and out:
        pr.meta.setdefault("recognised_sidebands", []).extend(gone)
        return out
    return found


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
    noise = _selection_noise(pr)
    if noise < pr.noise:
        pr.meta["noise_prepared"] = pr.noise
        pr.noise = pr.meta["noise"] = noise
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
    if not p.n_peaks:
        found = _drop_sidebands(_split_hidden_pairs(found, sel.record, pr, reject), pr)
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
