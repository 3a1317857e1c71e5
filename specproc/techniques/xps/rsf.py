"""Relative sensitivity factors: a built-in Scofield table (Al Kα) or the user's own.

Source of the built-in values: J. H. Scofield, "Hartree-Slater subshell photoionization cross-sections at
1254 and 1487 eV", J. Electron Spectrosc. Relat. Phenom. 8 (1976) 129-137, Al Kα (1486.6 eV) cross-sections
normalised to C 1s = 1.00 (the normalisation CasaXPS's Scofield library uses). For spin-orbit doublets
the value is the *whole* line (both components), matching areas that include the doublet partner; the
single-component values are given as e.g. ``"S 2p3/2"``. No transmission or escape-depth correction is
included: those are instrument-specific and applied separately (see :mod:`.quantify`).
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from ...core.errors import ParameterError

SOURCE = "Scofield, J. Electron Spectrosc. Relat. Phenom. 8 (1976) 129; Al Kα, C 1s = 1.00"

SCOFIELD_ALKA: dict[str, float] = {
    "Li 1s": 0.0568, "Be 1s": 0.196, "B 1s": 0.486, "C 1s": 1.00, "N 1s": 1.80, "O 1s": 2.93, "F 1s": 4.43,
    "Na 1s": 8.52, "Na 2s": 0.393, "Mg 2p": 0.252, "Mg 2s": 0.575, "Al 2p": 0.537, "Al 2s": 0.753,
    "Si 2p": 0.817, "Si 2s": 0.955, "P 2p": 1.19, "P 2s": 1.18, "S 2p": 1.68, "S 2p3/2": 1.11, "S 2s": 1.43,
    "Cl 2p": 2.29, "Cl 2p3/2": 1.51, "K 2p": 3.97, "Ca 2p": 5.07, "Ti 2p": 7.81, "Ti 2p3/2": 5.22,
    "V 2p": 9.33, "Cr 2p": 11.0, "Mn 2p": 13.9, "Fe 2p": 16.4, "Fe 2p3/2": 10.82, "Co 2p": 19.1,
    "Co 2p3/2": 12.62, "Ni 2p": 22.2, "Ni 2p3/2": 14.61, "Cu 2p": 25.4, "Cu 2p3/2": 16.73, "Zn 2p3/2": 18.92,
    "Zr 3d": 7.26, "Nb 3d": 8.21, "Mo 3d": 9.50, "Mo 3d5/2": 5.62, "Ru 3d": 11.5, "Pd 3d": 14.2,
    "Ag 3d": 18.0, "Ag 3d5/2": 10.66, "Sn 3d": 25.0, "Sn 3d5/2": 14.8, "In 3d": 22.0, "W 4f": 9.80,
    "Pt 4f": 15.9, "Au 4f": 17.1, "Au 4f7/2": 9.58, "Pb 4f": 22.0, "Bi 4f": 23.7, "Ce 3d": 28.2,
    "La 3d": 26.3,
}

_LINE = re.compile(r"^\s*([A-Z][a-z]?)\s*(\d[spdf](?:\d/\d)?)\s*$")


def normalise_line(name: str) -> str | None:
    """``"n1s"`` / ``"N1s"`` / ``"N 1s"`` -> ``"N 1s"``; None when the name is not an element line."""
    m = _LINE.match(name.strip().replace("_", " ").capitalize() if name[:1].islower() else name.strip())
    if not m:
        return None
    return f"{m.group(1)} {m.group(2)}"


def rsf_for(region: str, table: dict[str, float] | None = None) -> float | None:
    """RSF of a region (``"N 1s"``); the user's table first, then the built-in one; None when unknown."""
    line = normalise_line(region) or region
    for t in (table or {}, SCOFIELD_ALKA):
        for key in (region, line):
            if key in t:
                return float(t[key])
    return None


def load_rsf_table(path: str | Path) -> dict[str, float]:
    """Read a user RSF table: CSV / whitespace text with ``line, rsf`` per row (``# comments`` allowed).

    Lines may be written ``"N 1s"`` or ``"N1s"``; a header row is skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise ParameterError("RSF table not found", p)
    out = {}
    with open(p, newline="") as fh:
        for row in csv.reader(ln for ln in fh if ln.strip() and not ln.lstrip().startswith("#")):
            if len(row) == 1:
                row = row[0].rsplit(None, 1)
            if len(row) < 2:
                continue
            name, val = row[0].strip(), row[1].strip()
            try:
                v = float(val)
            except ValueError:
                continue  # header
            if not v > 0:
                raise ParameterError(f"RSF of {name!r} must be > 0, got {v}", p)
            out[normalise_line(name) or name] = v
    if not out:
        raise ParameterError("no 'line, rsf' rows in the RSF table", p)
    return out
