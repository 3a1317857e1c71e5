"""Chemical-state names for automatically found XPS components (no template given).

A component found at a charge-corrected binding energy inside exactly one window below is named by
its chemistry (``Li3N``, ``Li-B``, ``Li2CO3``...), so a user can match automatic results with
templates and claims; otherwise it keeps the neutral ``"<region> <BE>"`` name. Windows are
+-0.5 to 1 eV around literature values for lithium-battery interphases (NIST X-ray Photoelectron
Spectroscopy Database SRD 20; Wood et al., Chem. Mater. 2016 for Li3N; Ji et al., for Li-B):
a name is a suggestion from position alone, which a template should confirm.
"""
from __future__ import annotations

#: (region, lowest BE, highest BE, species) in eV, charge-corrected to C 1s 284.8
WINDOWS: tuple[tuple[str, float, float, str], ...] = (
    ("Li 1s", 52.0, 53.2, "Li metal"),
    ("Li 1s", 53.5, 54.3, "Li2O"),
    ("Li 1s", 54.6, 55.6, "Li+"),         # Li2CO3 / LiOH / Li salts: not separable by Li 1s alone
    ("Li 1s", 55.8, 56.8, "LiF"),
    ("B 1s", 186.5, 188.3, "Li-B"),
    ("B 1s", 189.8, 191.2, "B-N"),
    ("B 1s", 191.8, 193.2, "B-O"),
    ("N 1s", 397.8, 399.2, "Li3N"),
    ("N 1s", 399.5, 400.5, "N-H"),
    ("C 1s", 284.3, 285.3, "C-C"),
    ("C 1s", 286.0, 287.0, "C-O"),
    ("C 1s", 289.5, 290.6, "Li2CO3"),
    ("O 1s", 528.0, 529.2, "Li2O"),
    ("O 1s", 531.0, 532.2, "Li2CO3"),
)


def species_name(region: str, be_eV: float) -> str | None:
    """The species whose window holds ``be_eV`` in ``region``, or None (none, or ambiguous)."""
    hits = [name for reg, lo, hi, name in WINDOWS if reg == region and lo <= be_eV <= hi]
    return hits[0] if len(hits) == 1 else None
