"""Spin-orbit doublets: splitting and area ratio of common core levels (built-in table).

A p, d or f line is a doublet: the j = l + 1/2 component (``2p3/2``, ``3d5/2``, ``4f7/2``) and the
j = l - 1/2 partner at higher binding energy, with the area ratio fixed by the (2j + 1) degeneracies:
p 1:2, d 2:3, f 3:4 (ratios 0.5, 0.667, 0.75). In the shared model spec the partner is a
:class:`~specproc.fitting.models.Satellite` of the main component (same shape and width, position
``center + splitting``, intensity ``ratio`` x the main one), exactly CasaXPS's constrained doublet.

Splittings (eV): elemental / common-compound values from Moulder, Stickle, Sobol & Bomben, *Handbook of
X-ray Photoelectron Spectroscopy* (Perkin-Elmer, 1992) and the NIST XPS database (SRD 20); they vary
by ~0.1 eV with chemical state, so a fit may free them (``splitting=None`` in :func:`doublet`).
"""
from __future__ import annotations

import re

#: degeneracy ratio (j = l - 1/2 : j = l + 1/2) per orbital
RATIO = {"p": 1 / 2, "d": 2 / 3, "f": 3 / 4}

SPLITTING_EV: dict[str, float] = {
    "Al 2p": 0.44, "Si 2p": 0.61, "P 2p": 0.84, "S 2p": 1.18, "Cl 2p": 1.60, "K 2p": 2.77, "Ca 2p": 3.55,
    "Ti 2p": 6.05, "V 2p": 7.60, "Cr 2p": 9.30, "Mn 2p": 11.2, "Fe 2p": 13.1, "Co 2p": 15.05, "Ni 2p": 17.27,
    "Cu 2p": 19.75, "Zn 2p": 23.0, "Ga 2p": 26.84, "Ge 3d": 0.58, "As 3d": 0.69, "Se 3d": 0.86,
    "Zr 3d": 2.43, "Nb 3d": 2.72, "Mo 3d": 3.13, "Ru 3d": 4.17, "Rh 3d": 4.74, "Pd 3d": 5.26, "Ag 3d": 6.00,
    "Cd 3d": 6.74, "In 3d": 7.54, "Sn 3d": 8.41, "Sb 3d": 9.39, "Te 3d": 10.39, "Ba 3d": 15.33,
    "La 3d": 16.8, "Ce 3d": 18.6, "Hf 4f": 1.66, "Ta 4f": 1.91, "W 4f": 2.18, "Ir 4f": 2.98, "Pt 4f": 3.33,
    "Au 4f": 3.67, "Hg 4f": 4.05, "Pb 4f": 4.86, "Bi 4f": 5.31,
}

_LINE = re.compile(r"^\s*([A-Z][a-z]?)\s*(\d)([spdf])\s*$")


def doublet(line: str) -> tuple[float, float] | None:
    """``(splitting_eV, area_ratio)`` of a core level (``"S 2p"``); None for s lines and unknown ones.

    The ratio is the (2j+1) degeneracy ratio; the splitting comes from :data:`SPLITTING_EV`.
    """
    m = _LINE.match(line)
    if not m or m.group(3) == "s":
        return None
    key = f"{m.group(1)} {m.group(2)}{m.group(3)}"
    if key not in SPLITTING_EV:
        return None
    return SPLITTING_EV[key], RATIO[m.group(3)]


def partner_name(line: str) -> str:
    """Label of the j = l - 1/2 partner: ``"2p1/2"``, ``"3d3/2"``, ``"4f5/2"``."""
    m = _LINE.match(line)
    if not m:
        return "partner"
    l_ = "spdf".index(m.group(3))
    return f"{m.group(2)}{m.group(3)}{2 * l_ - 1}/2"
