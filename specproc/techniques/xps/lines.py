"""Where core-level and Auger lines sit: naming unlabelled regions, reading surveys, flagging overlaps.

Used for three things, always stated in a warning (a position is a suggestion, not a proof):

* a region without a line label (``block 3``) is identified by its strongest feature when exactly
  one photoelectron line of :data:`PHOTO` can be there (:func:`identify_region`);
* survey features are assigned to lines, and an element is taken as present only with consistent
  evidence (:mod:`.survey`);
* a feature inside a region that belongs to another element of the file (S 2s in the Mo 3d region,
  Mo 3p3/2 in the N 1s region) is named for that line and not counted in the region's element
  (:func:`other_line`).

Windows are charge-corrected binding energies (eV, C 1s = 284.8) of each line's strongest component
(j = l + 1/2 for doublets), spanning the common chemical states from the element to its highest
oxidation state: NIST X-ray Photoelectron Spectroscopy Database (SRD 20) and Moulder, Stickle, Sobol &
Bomben, *Handbook of X-ray Photoelectron Spectroscopy* (Perkin-Elmer, 1992). Auger windows are kinetic
energies referenced to the Fermi level (the same references), so an Auger line appears at the binding
energy ``source energy - KE``: they move with the X-ray source, photoelectron lines do not.
"""
from __future__ import annotations

import re

import numpy as np

#: photoelectron lines: line -> (lowest, highest) BE of its strongest component (eV)
PHOTO: dict[str, tuple[float, float]] = {
    "Li 1s": (52.0, 57.0), "Be 1s": (110.5, 115.0), "B 1s": (186.0, 194.0), "C 1s": (281.5, 293.5),
    "N 1s": (396.0, 408.0), "O 1s": (528.0, 535.0), "F 1s": (683.5, 690.0),
    "Na 1s": (1070.5, 1073.0), "Na 2s": (63.0, 65.0),
    "Mg 1s": (1302.0, 1305.5), "Mg 2s": (88.0, 90.0), "Mg 2p": (49.0, 52.0),
    "Al 2p": (72.5, 75.8), "Al 2s": (117.5, 120.0), "Si 2p": (98.5, 104.0), "Si 2s": (149.5, 155.0),
    "P 2p": (128.5, 135.0), "P 2s": (187.5, 192.5), "S 2p": (160.5, 170.0), "S 2s": (225.0, 233.0),
    "Cl 2p": (198.0, 209.0), "Cl 2s": (269.0, 272.0), "Ar 2p": (241.0, 243.0),
    "K 2p": (292.0, 294.0), "K 2s": (376.5, 378.5), "Ca 2p": (346.0, 348.5), "Ca 2s": (437.5, 440.5),
    "Ti 2p": (453.5, 459.5), "Ti 3p": (32.5, 38.0), "V 2p": (512.0, 517.5), "Cr 2p": (574.0, 580.0),
    "Mn 2p": (638.5, 642.5), "Fe 2p": (706.5, 712.0), "Fe 3p": (52.5, 56.5), "Co 2p": (777.5, 782.0),
    "Co 3p": (58.0, 62.0), "Ni 2p": (852.0, 857.0), "Ni 3p": (66.0, 69.0), "Cu 2p": (932.0, 936.0),
    "Cu 3p": (74.0, 78.0), "Zn 2p": (1021.0, 1023.0), "Zn 3d": (9.5, 11.0), "Ga 3d": (18.0, 21.0),
    "Ge 3d": (29.0, 33.0), "As 3d": (41.0, 46.0), "Se 3d": (54.5, 60.0), "Br 3d": (68.0, 71.0),
    "Sr 3d": (132.5, 135.0), "Y 3d": (155.5, 159.0), "Zr 3d": (178.5, 183.5), "Nb 3d": (202.0, 208.0),
    "Mo 3d": (227.5, 233.2), "Mo 3p": (393.0, 398.5), "Ru 3d": (279.5, 283.0), "Rh 3d": (306.5, 310.0),
    "Pd 3d": (334.5, 338.5), "Ag 3d": (367.5, 369.0), "Cd 3d": (404.5, 406.0), "In 3d": (443.5, 445.5),
    "Sn 3d": (484.5, 487.5), "Sb 3d": (527.5, 531.0), "Te 3d": (572.5, 577.5), "I 3d": (618.5, 620.5),
    "Cs 3d": (723.5, 725.5), "Ba 3d": (779.0, 781.0), "La 3d": (834.0, 836.0), "Ce 3d": (880.0, 883.5),
    "Hf 4f": (14.0, 19.0), "Ta 4f": (21.5, 27.0), "W 4f": (31.0, 36.5), "Ir 4f": (60.5, 63.0),
    "Pt 4f": (70.5, 74.5), "Au 4f": (83.5, 85.5), "Hg 4f": (99.5, 101.5), "Pb 4f": (136.5, 139.0),
    "Bi 4f": (156.5, 159.5),
}

#: spin-orbit splittings (eV) of lines of :data:`PHOTO` that the doublet table (:mod:`.doublets`) lacks;
#: used only to look for the partner of a line (identification evidence)
EXTRA_SPLITTING: dict[str, float] = {
    "Sr 3d": 1.79, "Y 3d": 2.05, "Br 3d": 1.05, "Ga 3d": 0.45, "Zn 3d": 0.3, "I 3d": 11.5, "Cs 3d": 13.9,
    "Mo 3p": 17.5, "Ti 3p": 0.6, "Fe 3p": 0.8, "Co 3p": 1.0, "Ni 3p": 1.8, "Cu 3p": 2.4,
}

#: Auger lines: (label, lowest KE, highest KE) in eV, Fermi-referenced; label "<El> <transition>"
AUGER: tuple[tuple[str, float, float], ...] = (
    ("C KLL", 255.0, 275.0), ("N KLL", 370.0, 390.0), ("O KLL", 498.0, 515.0), ("F KLL", 648.0, 662.0),
    ("Na KLL", 985.0, 995.0), ("Mg KLL", 1175.0, 1190.0), ("Mg KLL", 1130.0, 1160.0), ("Mg KLL", 1095.0, 1110.0),
    ("Al KLL", 1380.0, 1397.0), ("S LMM", 145.0, 155.0), ("Cl LMM", 175.0, 185.0), ("Ti LMM", 380.0, 420.0),
    ("Cr LMM", 480.0, 535.0), ("Mn LMM", 535.0, 595.0), ("Fe LMM", 590.0, 606.0), ("Fe LMM", 640.0, 660.0),
    ("Fe LMM", 696.0, 708.0), ("Co LMM", 710.0, 720.0), ("Co LMM", 765.0, 778.0), ("Ni LMM", 775.0, 785.0),
    ("Ni LMM", 840.0, 850.0), ("Cu LMM", 910.0, 921.0), ("Zn LMM", 985.0, 995.0),
)

#: lines an element also shows, with their height relative to the element's main line (a lower
#: bound): a survey names the element only when every such line that the data could show is there
CONFIRM: dict[str, tuple[tuple[str, float], ...]] = {
    "O": (("O KLL", 0.2),), "F": (("F KLL", 0.3),), "Na": (("Na KLL", 0.3),),
    "Mg": (("Mg KLL", 0.5), ("Mg 2s", 0.05)), "Al": (("Al 2s", 0.5),), "Si": (("Si 2s", 0.5),),
    "P": (("P 2s", 0.4),), "S": (("S 2s", 0.4),), "Cl": (("Cl 2s", 0.2),),
}

_LINE = re.compile(r"^([A-Z][a-z]?) (\d)([spdf])$")


def element(line: str) -> str:
    """``"Fe 2p"`` -> ``"Fe"``; ``"O KLL"`` -> ``"O"``."""
    return line.split()[0]


def splitting(line: str) -> tuple[float, float] | None:
    """``(splitting eV, partner/main area ratio)`` of a p/d/f line, None for s lines and unknown ones."""
    from .doublets import RATIO, doublet

    d = doublet(line)
    if d is not None:
        return d
    m = _LINE.match(line)
    if m and m.group(3) != "s" and line in EXTRA_SPLITTING:
        return EXTRA_SPLITTING[line], RATIO[m.group(3)]
    return None


def main_line(el: str) -> str | None:
    """The line of :data:`PHOTO` an element is normally identified and quantified by (the first listed)."""
    return next((ln for ln in PHOTO if element(ln) == el), None)


def photo_candidates(be: float, tol: float = 0.0) -> list[str]:
    """Lines of :data:`PHOTO` whose window (widened by ``tol``) holds ``be``."""
    return [ln for ln, (lo, hi) in PHOTO.items() if lo - tol <= be <= hi + tol]


def auger_candidates(be: float, source_eV: float | None, tol: float = 0.0) -> list[str]:
    """Auger lines that appear at binding energy ``be`` for a source of ``source_eV`` (none when unknown)."""
    if source_eV is None or not np.isfinite(source_eV):
        return []
    ke = source_eV - be
    return list(dict.fromkeys(lb for lb, lo, hi in AUGER if lo - tol <= ke <= hi + tol))


def auger_positions(label: str, source_eV: float) -> list[tuple[float, float]]:
    """``(lowest, highest)`` binding-energy windows of an Auger line for a source energy."""
    return [(source_eV - hi, source_eV - lo) for lb, lo, hi in AUGER if lb == label]


def _partner_seen(x, s, be, line, fwhm, rel=0.3) -> bool | None:
    """Whether the spin-orbit partner of ``line`` (main component at ``be``) is in the data ``s``:
    None when it cannot be judged (no splitting, partner outside the data, not resolved)."""
    d = splitting(line)
    if d is None:
        return None
    split, ratio = d
    pos = be + split
    lo, hi = float(np.min(x)), float(np.max(x))
    if not (lo + fwhm <= pos <= hi - fwhm) or split < 1.5 * fwhm:
        return None
    near = np.abs(x - pos) <= max(0.5 * fwhm, 0.3)
    peak = np.max(s[np.abs(x - be) <= max(0.5 * fwhm, 0.3)])
    return bool(near.any() and np.max(s[near]) >= rel * ratio * peak)


def identify_region(x, s, shift: float = 0.0, fwhm: float | None = None) -> tuple[str | None, str]:
    """The photoelectron line of an unlabelled region from its strongest feature.

    Parameters
    ----------
    x : array
        Binding energy in the file (eV).
    s : array
        Background-subtracted, level-summed intensities.
    shift : float
        Charge shift added to ``x`` (eV).
    fwhm : float, optional
        Width of the strongest feature (partners closer than 1.5 FWHM are not looked for).

    Returns
    -------
    (line or None, reason)
        ``reason`` says why (for the warning): the feature's position and the candidates.
    """
    x = np.asarray(x, float) + shift
    s = np.asarray(s, float)
    i = int(np.argmax(s))
    be = float(x[i])
    fw = float(fwhm) if fwhm else 1.5
    cands = photo_candidates(be)
    if not cands:
        return None, f"no core-level line of the built-in table at its strongest feature ({be:.1f} eV)"
    judged = {ln: _partner_seen(x, s, be, ln, fw) for ln in cands}
    kept = [ln for ln in cands if judged[ln] is not False]
    dropped = [ln for ln in cands if judged[ln] is False]
    why = f"strongest feature at {be:.1f} eV"
    if dropped:
        why += f" ({', '.join(dropped)} ruled out: no spin-orbit partner)"
    if len(kept) == 1:
        return kept[0], why
    if not kept:
        return None, why + ": no line left"
    return None, why + f" could be {', '.join(kept)}"


def other_line(be: float, own: str | None, elements: set[str]) -> tuple[str | None, list[str]]:
    """A feature at ``be`` inside a region of line ``own``: the other element's line it is, if any.

    Returns ``(line, overlaps)``: ``line`` when ``be`` lies outside the own line's window and inside
    exactly one window of another element present in the file (``elements``); ``overlaps`` lists the
    other elements' lines whose windows also hold ``be`` (for a note) when it is inside the own window,
    or all of them when it is outside (see :func:`outside_own`).
    """
    others = [ln for ln in photo_candidates(be) if element(ln) in elements and (own is None or
                                                                                element(ln) != element(own))]
    if own is not None and own in PHOTO:
        lo, hi = PHOTO[own]
        d = splitting(own)
        hi_any = hi + (d[0] if d else 0.0)          # the partner of a doublet is the own line too
        if lo <= be <= hi_any:
            return None, others
    if len(others) == 1:
        return others[0], []
    return None, others


def outside_own(be: float, own: str | None) -> bool:
    """True when ``be`` lies outside every chemical state of line ``own`` (its window, the spin-orbit
    partner's included): a satellite, a loss feature or another element's line, not ``own``."""
    if own is None or own not in PHOTO:
        return False
    lo, hi = PHOTO[own]
    d = splitting(own)
    return not (lo <= be <= hi + (d[0] if d else 0.0))
