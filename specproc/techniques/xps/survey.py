"""Survey (wide-scan) regions: features, the lines and elements they show, and one fit per element.

A survey is not fitted as one region (a Shirley background over 1000 eV means nothing). Instead:

1. **Features**: the toolkit's :func:`~specproc.fitting.peaks.pick_peaks` on the level-summed survey
   (prominence >= ``snr`` noise SDs from first differences: white counting noise), away from the ends.
2. **Charge shift**: the profile's one shift when the regions gave it; otherwise, for the reference
   line (``C 1s=284.8``) the survey's only feature within ``max_shift`` of it (none, or several: no
   correction, and wider identification windows).
3. **Elements, with consistent evidence** (:mod:`.lines`): a feature 8-30 eV above a feature at least
   twice as prominent may be its energy-loss (plasmon) feature and never names an element alone.
   Elements are taken in the order of their main feature's prominence; one is present when its first
   line in the survey range has a feature not already explained by a present element (a photoelectron
   line, spin-orbit partner or Auger line), its resolved spin-orbit partner is there when the data
   could show it, and so are the lines of :data:`~specproc.techniques.xps.lines.CONFIRM` the data could
   show (O KLL for O, Si 2s for Si...).
4. **Quantification**: per present element, its first photoelectron line with an RSF whose feature is
   not shared with another element; that line is fitted (the batch engine, one GL(30) component or
   doublet, Shirley background) in a window of 3 FWHM either side that stops short of other features;
   at % over those lines: a low-resolution estimate, reported apart from the regions' at %.

Everything is stated: the shift's source, the elements and their lines, the features left unexplained.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .lines import (AUGER, CONFIRM, PHOTO, auger_candidates, auger_positions, element, photo_candidates,
                    splitting)

SURVEY_NAME = re.compile(r"survey|wide|overview|broad\s*scan", re.I)
#: a region wider than this (eV) is a survey
SURVEY_SPAN_EV = 150.0
#: energy-loss (plasmon) features sit this far above their line (eV)
LOSS_RANGE = (8.0, 30.0)


def is_survey(name: str, x) -> bool:
    """A survey: named so (survey / wide / overview) or wider than :data:`SURVEY_SPAN_EV`."""
    x = np.asarray(x, float)
    return bool(SURVEY_NAME.search(name or "")) or (x.size > 1 and float(np.ptp(x)) > SURVEY_SPAN_EV)


@dataclass
class SurveyResult:
    region: str
    shift: float
    shift_note: str
    features: list                                   # table rows (dicts)
    elements: dict                                   # element -> line quantified (or None)
    fits: dict = field(default_factory=dict)         # line -> StackFit (component named by element)
    warnings: list = field(default_factory=list)


def _features(x, S, snr):
    from ...fitting.noise import noise_sigma
    from ...fitting.peaks import pick_peaks

    noise = noise_sigma(S, "diff")
    dx = float(np.median(np.abs(np.diff(x))))
    cands = pick_peaks(x, S, noise=noise, snr=snr, max_peaks=40, min_distance=2 * dx)
    lo, hi = float(np.min(x)), float(np.max(x))
    out = [dict(c, snr=c["prominence"] / noise) for c in cands
           if min(c["center"] - lo, hi - c["center"]) > 2 * max(min(c["fwhm"], 10.0), 3 * dx)]
    return sorted(out, key=lambda c: -c["prominence"]), noise


def survey_shift(x, Y, ref_be: float, max_shift: float, snr: float = 8.0):
    """Charge shift from the survey's feature of the reference line: ``(shift or None, note)``."""
    S = np.atleast_2d(np.asarray(Y, float)).sum(axis=0)
    feats, _ = _features(np.asarray(x, float), S, snr)
    near = [f for f in feats if abs(f["center"] - ref_be) <= max_shift]
    if len(near) == 1:
        p = near[0]["center"]
        return ref_be - p, f"the survey's only feature within {max_shift:g} eV of {ref_be:g} eV, at {p:.2f} eV"
    if not near:
        return None, f"no survey feature within {max_shift:g} eV of {ref_be:g} eV"
    where = ", ".join(f"{f['center']:.1f}" for f in near)
    return None, (f"{len(near)} survey features within {max_shift:g} eV of {ref_be:g} eV ({where} eV): "
                  "which one is the reference is not known")


class _Features:
    """A survey's features and the lookups every step asks of them (tolerance ``tol`` eV on the windows)."""

    def __init__(self, feats, tol, source_eV, lo_x, hi_x):
        self.feats, self.tol, self.source_eV, self.lo_x, self.hi_x = feats, tol, source_eV, lo_x, hi_x

    def photo(self, line, pos=None):
        """The most prominent feature on ``line`` (on ``pos`` +- tol when given)."""
        tol = self.tol
        hits = [f for f in self.feats if (line in photo_candidates(f["center"], tol) if pos is None
                                          else abs(f["center"] - pos) <= max(tol, 0.25 * f["fwhm"]))]
        return max(hits, key=lambda f: f["prominence"]) if hits else None

    def auger(self, label):
        return next((f for f in self.feats if label in auger_candidates(f["center"], self.source_eV, self.tol)), None)

    def in_range(self, lo, hi):
        return self.lo_x <= hi and lo <= self.hi_x


def analyse_survey(region: str, x, Y, *, shift: float, shift_known: bool, shift_note: str = "",
                   source_eV: float | None = None, weights=None, snr: float = 8.0, rsf=None) -> SurveyResult:
    """Features, present elements and one fitted line per element of a survey region.

    Parameters
    ----------
    x : array
        Binding energy in the file (eV).
    Y : array (levels, n)
    shift : float
        Charge shift added to ``x``.
    shift_known : bool
        False when no shift could be determined: identification windows are widened by 3 eV (1 eV else).
    source_eV : float, optional
        X-ray energy (Auger lines appear at ``source - KE``); None: Auger lines are not assigned.
    weights : array (levels, n), optional
        Fit weights (Poisson for counts).
    rsf : dict, optional
        The user's RSFs (:func:`~specproc.techniques.xps.rsf.rsf_for`).
    """
    x = np.asarray(x, float)
    Y = np.atleast_2d(np.asarray(Y, float))
    xc = x + shift
    feats, noise = _features(xc, Y.sum(axis=0), snr)
    tol = 1.0 if shift_known else 3.0
    warns: list[str] = []
    if source_eV is None:
        warns.append(f"{region}: no X-ray source energy in the file: Auger lines not assigned")
    # energy-loss candidates: 8-30 eV above a feature at least twice as prominent
    for f in feats:
        f["loss_of"] = next((g for g in feats if LOSS_RANGE[0] <= f["center"] - g["center"] <= LOSS_RANGE[1]
                             and g["prominence"] >= 2 * f["prominence"]), None)
    v = _Features(feats, tol, source_eV, float(np.min(xc)), float(np.max(xc)))
    present, rejected, explained = _present_elements(v, snr)
    rows = _feature_table(v, region, shift, present, explained)
    note = (f"{region}: survey features ({len(feats)} at >= {snr:g} noise SDs; charge shift {shift:+.2f} eV: "
            f"{shift_note or ('none' if not shift_known else 'from the regions')}; lines matched within "
            f"{tol:g} eV of their windows): elements present by position "
            + (", ".join(f"{el} ({ln})" for el, ln in present.items()) or "none"))
    warns.append(note)
    if rejected:
        warns.append(f"{region}: not taken as elements (inconsistent evidence): " + "; ".join(rejected))
    unexpl = [r for r in rows if r["assignment"].startswith(("unidentified", "energy loss"))]
    if unexpl:
        warns.append(f"{region}: features not assigned to a line: " + ", ".join(
            f"{r['be_eV']:.1f} eV ({r['assignment']})" for r in unexpl))
    res = SurveyResult(region, shift, shift_note, rows, {})
    _fit_element_lines(res, v, region, xc, Y, weights, present, explained, rsf, warns)
    res.warnings = warns
    return res


def _present_elements(v: _Features, snr: float):
    """Elements present by consistent evidence, strongest first: the first line's feature (not an energy
    loss, not explained by an element already present), its spin-orbit partner and confirming lines
    where they would be seen. Returns ``(present {element: line}, rejected [reasons], explained
    {feature id: [labels]})``."""
    feats, tol, source_eV = v.feats, v.tol, v.source_eV
    # candidate elements by the prominence of their first line's feature
    leads = {}
    for ln in PHOTO:
        el = element(ln)
        if el in leads or not v.in_range(*PHOTO[ln]):
            continue
        leads[el] = ln                       # the element's first line inside the survey
    cand = []
    for el, ln in leads.items():
        f = v.photo(ln)
        if f is not None and f["loss_of"] is None:
            cand.append((f["prominence"], el, ln, f))
    cand.sort(key=lambda t: -t[0])
    explained: dict[int, list[str]] = {}     # feature id -> lines of present elements

    def explain(f, label):
        explained.setdefault(id(f), [])
        if label not in explained[id(f)]:
            explained[id(f)].append(label)

    present: dict[str, str] = {}
    rejected: list[str] = []
    thresh = snr
    for prom, el, ln, f in cand:
        if id(f) in explained:
            rejected.append(f"{ln} ({f['center']:.1f} eV: already {' / '.join(explained[id(f)])})")
            continue
        missing = []
        d = splitting(ln)
        if d and d[0] >= 1.5 * f["fwhm"] and d[1] * f["snr"] >= thresh and f["center"] + d[0] < v.hi_x:
            if v.photo(ln, f["center"] + d[0]) is None:
                missing.append(f"its spin-orbit partner at {f['center'] + d[0]:.1f} eV")
        for cl, rel in CONFIRM.get(el, ()):
            if rel * f["snr"] < thresh:
                continue                      # too weak to be seen: no evidence either way
            if cl in PHOTO:
                if v.in_range(*PHOTO[cl]) and v.photo(cl) is None:
                    missing.append(cl)
            elif source_eV is not None:
                wins = auger_positions(cl, source_eV)
                if any(v.in_range(a, b) for a, b in wins) and v.auger(cl) is None:
                    missing.append(cl)
        if missing:
            rejected.append(f"{ln} ({f['center']:.1f} eV: no {', no '.join(missing)})")
            continue
        present[el] = ln
        # what this element explains: its photoelectron lines (and partners) and Auger lines
        for g in feats:
            for pl in photo_candidates(g["center"], tol):
                if element(pl) == el:
                    explain(g, pl)
            for al in auger_candidates(g["center"], source_eV, tol):
                if element(al) == el:
                    explain(g, f"{al} (Auger)")
        for pl in [q for q in PHOTO if element(q) == el]:
            sp = splitting(pl)
            if sp is None:
                continue
            main = v.photo(pl)
            if main is not None:
                partner = v.photo(pl, main["center"] + sp[0])
                if partner is not None and partner is not main:
                    explain(partner, f"{pl} partner")
    return present, rejected, explained


def _feature_table(v: _Features, region, shift, present, explained) -> list[dict]:
    """One row per feature: its assignment (lines of present elements, an energy loss, or unidentified)."""
    rows = []
    for f in sorted(v.feats, key=lambda f: f["center"]):
        labels = explained.get(id(f), [])
        others = [ln for ln in photo_candidates(f["center"], v.tol) if element(ln) not in present]
        if labels:
            what = " / ".join(labels)
        elif f["loss_of"] is not None:
            g = f["loss_of"]
            gl = " / ".join(explained.get(id(g), [])) or f"the feature at {g['center']:.1f} eV"
            what = f"energy loss? ({f['center'] - g['center']:.1f} eV above {gl})"
        else:
            what = "unidentified"
        rows.append({"region": region, "be_eV": float(f["center"]), "be_file_eV": float(f["center"] - shift),
                     "fwhm_eV": float(f["fwhm"]), "height": float(f["height"]), "snr": float(f["snr"]),
                     "assignment": what, "overlap": len(labels) > 1,
                     "other_candidates": ", ".join(others) or None})
    return rows


def _fit_element_lines(res, v: _Features, region, xc, Y, weights, present, explained, rsf, warns) -> None:
    """One line per present element (the first with an RSF and a feature of its own), fitted in its
    window between the neighbouring features (stack fit, doublet from the table); into ``res``."""
    from .fitting import fit_levels
    from .model import Component, Doublet
    from .rsf import rsf_for

    feats, tol = v.feats, v.tol
    centers = [(f, f["center"]) for f in feats]
    for el, lead in present.items():
        chosen = None
        for ln in [q for q in PHOTO if element(q) == el]:
            if rsf_for(ln, rsf) is None or not v.in_range(*PHOTO[ln]):
                continue
            f = v.photo(ln)
            if f is None or len(explained.get(id(f), [])) != 1:
                continue
            chosen = (ln, f)
            break
        if chosen is None:
            res.elements[el] = None
            warns.append(f"{region}: {el} present but none of its lines with an RSF has a feature of its own "
                         "(overlap, or no RSF): not quantified from the survey")
            continue
        ln, f = chosen
        d = splitting(ln)
        w = float(f["fwhm"])
        own = [f] + [g for g in feats if d and abs(g["center"] - (f["center"] + d[0])) <= max(tol, 0.25 * g["fwhm"])]
        top = f["center"] + (d[0] if d else 0.0)
        lo, hi = f["center"] - 3 * w, top + 3 * w
        for g, c in centers:
            if any(g is o for o in own):
                continue
            margin = 1.5 * min(g["fwhm"], w)   # a broad hump's picked width says nothing about its flank
            if c < f["center"]:
                lo = max(lo, c + margin)
            elif c > top:
                hi = min(hi, c - margin)
        sel = (xc >= lo) & (xc <= hi)
        if sel.sum() < 10 or not (lo < f["center"] < hi):
            res.elements[el] = None
            warns.append(f"{region}: {el} ({ln}) has no room between its neighbours for a fit: not quantified")
            continue
        comp = Component(name=el, center=float(f["center"]), fwhm=w, fwhm_bounds=(0.3 * w, 3.0 * w),
                         center_window=max(1.0, 0.5 * w),
                         doublet=Doublet(splitting=d[0], ratio=d[1]) if d else False)
        wsel = None if weights is None else np.asarray(weights, float)[:, sel]
        sf = fit_levels(region, [comp], xc[sel], Y[:, sel], background="shirley", weights=wsel, given=False,
                        line=ln)
        sf.warnings = [f"{region} {ln}: {m_.split(': ', 1)[-1]}" if m_.startswith(region) else m_
                       for m_ in sf.warnings]
        warns += sf.warnings
        res.elements[el] = ln
        res.fits[ln] = sf


__all__ = ["AUGER", "SurveyResult", "analyse_survey", "is_survey", "survey_shift"]
