"""XPS automatic mode: a region without a template gets its components from the toolkit's model selection.

:func:`select_region` runs :func:`specproc.fitting.select.select_model` (candidates from the second
derivative, forward selection by BIC with significance tests, merging of split lines, "count
uncertain" warnings) on the region's level-summed spectrum after its inelastic background. The XPS
science stays here, in the routine's hooks:

* ``peak``: every candidate is a CasaXPS GL(30) line; on a p/d/f line it is a spin-orbit *doublet*
  (partner at ``+ splitting`` with the (2j+1) area ratio, :mod:`.doublets`) — one component, so a
  doublet is never counted as two chemical states; a candidate on another element's line inside
  the region (S 2s in Mo 3d) gets that line's doublet or none;
* widths within the template bounds of :class:`~specproc.techniques.xps.model.Component`;
* the noise of counts: Poisson, ``sqrt(mean counts)`` of the summed spectrum (the noise SD whose
  square is the mean variance: chi² of a right model is ``n``).

:func:`auto_template` names the selected positions (chemistry names only with consistent evidence,
:mod:`.species`) and :func:`fit_automatic` fits that template to every level through the stack fit
(:func:`~specproc.techniques.xps.fitting.fit_levels`, after-fit checks at every level), dropping the
components that are no detection at any level (:func:`~specproc.techniques.xps.fitting.fit_auto`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.errors import ProcessingError
from . import backgrounds as bgs
from .model import Component

#: GL mixing of automatic components (CasaXPS GL(30), the template default)
MIXING = 0.3


@dataclass
class RegionSelection:
    """The selected components of one region: positions and widths, the doubts, the record."""

    picks: list                                  # [{"center", "fwhm", "height"}] ascending BE
    warnings: list = field(default_factory=list)
    record: dict = field(default_factory=dict)


def doublet_at(be: float, line: str | None, elements=None):
    """``(line, (splitting, ratio) or None, counted)`` of a feature at ``be`` (eV) inside a region of ``line``.

    The feature is the region's own line (its table doublet), another element's line of this file
    (that line's doublet; not counted in the atomic %), or outside every state of the own line (no
    doublet, not counted). One rule for the selection's ``peak`` hook and :func:`auto_template`.
    """
    from .doublets import doublet as table_doublet
    from .lines import other_line, outside_own

    other, _ = other_line(be, line, set(elements or ()))
    if other is not None:
        return other, table_doublet(other), False
    if outside_own(be, line):
        return line, None, False
    return line, (table_doublet(line) if line else None), True


def summed_signal(x, Y, background: str = "shirley"):
    """Level-summed spectrum after the region's background (each level its own), and its noise SD for
    counts (Poisson: ``sqrt(mean summed counts)``) or None (estimated by the routine)."""
    from .fitting import end_channels

    x = np.asarray(x, float)
    Y = np.atleast_2d(np.asarray(Y, float))
    kind = "shirley" if background == "shirley-active" else background
    kw = {} if kind == "none" else {"n_avg": end_channels(x.size)}
    S = (Y - bgs.background(kind, x, Y, **kw)).sum(axis=0)
    return S, Y.sum(axis=0)


def noise_sd(S, total, counts: bool = True) -> float:
    """Noise SD of a level-summed region for the selection: Poisson, ``sqrt(mean counts)`` (its square
    is the mean variance, so chi² of a right model is ``n``); count rates (c/s) are counts times an
    unknown factor ``k``, measured as the first-difference variance over the median rate (a region is
    mostly background, where the differences are noise: an estimate from signal-free stretches came
    out 5-10x too high on the MultiPak file)."""
    from ...fitting.noise import noise_sigma_diff

    mean = float(np.mean(np.maximum(total, 0.0)))
    if counts:
        return float(np.sqrt(max(mean, 1.0)))
    med = float(np.median(total))
    sd = noise_sigma_diff(S)
    if not (med > 0 and sd > 0):
        return sd if sd > 0 else 1.0
    return float(np.sqrt(sd ** 2 / med * mean))


def select_region(region: str, x, Y, *, line: str | None = None, elements=None, background: str = "shirley",
                  counts: bool = True, where=None, budget_s: float = 20.0) -> RegionSelection:
    """Components of one region from the toolkit's model selection (module docstring).

    Parameters
    ----------
    x : array (n,)
        Charge-corrected binding energy (eV), either order (XPS files: descending).
    Y : array (levels, n)
        Counts (or count rates) of every level; selection runs on their sum after the background.
    line : str, optional
        The region's core line (doublets, other elements' lines).
    elements : set of str, optional
        Elements with a line in the file.
    counts : bool
        The values are counts (Poisson noise known); else the routine estimates the noise.

    Returns
    -------
    RegionSelection
        Empty ``picks`` (and a warning) when nothing is found above the noise.
    """
    from ...fitting.models import Peak, Satellite
    from ...fitting.select import select_model
    from .doublets import partner_name

    x = np.asarray(x, float)
    if x.size < 16:     # the selection needs a few points per line and both flanks
        return RegionSelection([], [f"{region}: no template given and only {x.size} channels (the automatic "
                                    "selection needs >= 16): region not fitted or quantified"])
    S, total = summed_signal(x, Y, background)
    noise = noise_sd(S, total, counts)
    dx = float(np.median(np.abs(np.diff(x))))
    lo_fw, hi_fw = Component.model_fields["fwhm_bounds"].default
    lo_fw = max(lo_fw, 2 * dx)

    def peak(name, center, fwhm):
        own, d, _ = doublet_at(center, line, elements)
        sats = [Satellite(name=partner_name(own), offset=d[0], ratio=d[1])] if d else []
        win = max(fwhm, 3 * dx)
        return Peak(name=name, shape="gl-product", center=center, fwhm=float(np.clip(fwhm, lo_fw, hi_fw)),
                    init={"mixing": MIXING}, fixed=["mixing"], satellites=sats,
                    bounds={"center": (center - win, center + win), "fwhm": (lo_fw, hi_fw)})

    try:
        sel = select_model(x, S, shape="gl-product", noise=noise, baseline="linear", peak=peak, min_fwhm=lo_fw,
                           max_fwhm=hi_fw, unit="eV", where=where, budget_s=budget_s)
    except ProcessingError as exc:
        if "no component" not in exc.reason:
            raise
        return RegionSelection([], [f"{region}: no template given and {exc.reason}: region not fitted or quantified"])
    rows = sel.fit.peak_table()
    picks = sorted(({"center": float(r["center"]), "fwhm": float(r["fwhm"]), "height": float(r["height"])}
                    for r in rows.to_dict(orient="records")), key=lambda c: c["center"])
    return RegionSelection(picks, [f"{region}: {w}" for w in sel.warnings], sel.record)


def auto_template(region: str, picks, *, line: str | None = None, elements=None,
                  evidence=None) -> tuple[list[Component], list[str]]:
    """Components of a region without a template from its selected positions.

    Parameters
    ----------
    region : str
    picks : list of dict
        ``{"center", "fwhm"}`` (charge-corrected eV), e.g. :func:`select_region`'s.
    line : str, optional
        The region's core line (default: the region name when it is one).
    elements : set of str, optional
        Elements with a line in the file: a peak outside the own line's window that sits on a line of
        one of them (S 2s in Mo 3d, Mo 3p3/2 in N 1s) is named for that line and not counted in the
        atomic % (``quantify=False``).
    evidence : dict, optional
        ``{line: [charge-corrected positions]}`` of the whole file, for chemistry names
        (:func:`~specproc.techniques.xps.species.chemistry_name`); default: this region's peaks only.

    Returns
    -------
    (components, notes)
        Doublets for p/d/f lines; chemistry names only with consistent evidence, else
        ``"<line> @ <BE> eV"``; ``notes`` are warnings (names withheld, overlaps).
    """
    from .lines import other_line
    from .model import Doublet
    from .rsf import normalise_line
    from .species import chemistry_name, neutral_name

    line = line or normalise_line(region)
    if evidence is None:
        evidence = {line: [float(c["center"]) for c in picks]} if line else {}
    names, out, notes = set(), [], []

    def unique(name):
        name = name if name not in names else f"{name} #{len(names) + 1}"
        names.add(name)
        return name

    for c in picks:
        be = float(c["center"])
        fw = float(np.clip(c.get("fwhm") or 1.5, 0.5, 4.0))
        own, d, counted = doublet_at(be, line, elements)
        _, overlaps = other_line(be, line, set(elements or ()))
        if own != line:     # another element's line of this file
            name = unique(own if own not in names else neutral_name(own, be))
            out.append(Component(name=name, center=be, fwhm=fw, quantify=False,
                                 doublet=Doublet(splitting=d[0], ratio=d[1]) if d else False))
            notes.append(f"{region}: the peak at {be:.1f} eV is outside the {line} window and sits on {own} "
                         f"(also in this file): named {name!r}, not counted in the atomic %")
            continue
        if not counted:
            name = unique(neutral_name(line, be))
            out.append(Component(name=name, center=be, fwhm=fw, quantify=False))
            notes.append(f"{region}: the peak at {be:.1f} eV is outside every chemical state of {line} in the "
                         f"line table{' and could be ' + ', '.join(overlaps) if overlaps else ''}: a satellite, a "
                         f"loss feature or a line of an element not measured; named {name!r}, not counted in the "
                         "atomic %")
            continue
        name, why = chemistry_name(line, be, evidence) if line else (None, None)
        if why:
            notes.append(f"{region}: {why}")
        name = unique(name if name and name not in names else neutral_name(line or region, be))
        if overlaps:
            notes.append(f"{region}: {name} may also hold {', '.join(overlaps)} (another element of this file "
                         "has a line there)")
        out.append(Component(name=name, center=be, fwhm=fw, doublet=d is not None))
    return out, notes


def fit_automatic(region: str, x, Y, selection: RegionSelection, *, line=None, elements=None, evidence=None,
                  background: str = "shirley", weights=None):
    """The selected components named and fitted to every level (:func:`~.fitting.fit_auto`).

    Returns
    -------
    (LevelsFit or None, components, warnings)
    """
    from .fitting import fit_auto

    if not selection.picks:
        return None, [], list(selection.warnings)
    comps, notes = auto_template(region, selection.picks, line=line, elements=elements, evidence=evidence)
    sf, msgs = fit_auto(region, comps, x, Y, background=background, weights=weights, line=line)
    kept = [c for c in comps if sf is not None and c.name in sf.comps]
    if sf is not None and len(kept) < len(comps):   # the notes of the components that stayed
        notes = auto_template(region, [p for p, c in zip(selection.picks, comps) if c in kept], line=line,
                              elements=elements, evidence=evidence)[1]
    warns = list(notes) + [f"{region}: no template given; {len(comps)} component(s) selected by the toolkit's "
                           "model selection (BIC, significance, no split lines): "
                           + ", ".join(f"{c.name} ({c.center:.2f} eV)" for c in comps)]
    warns += selection.warnings + msgs
    return sf, kept, warns
