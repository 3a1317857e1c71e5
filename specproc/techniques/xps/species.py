"""Chemical-state names for automatically found XPS components (no template given).

A component found at a charge-corrected binding energy inside exactly one window below is named by
its chemistry (``Li3N``, ``Li-B``, ``Li2CO3``...) **only when the rest of the file agrees**: a
chemistry name is a claim about more than one line, so it needs consistent evidence
(:data:`EVIDENCE`). O 1s at 531.5 eV is Li2CO3 only when C 1s shows carbonate (289-290.8 eV) and
the file has a Li 1s line; in a MoS2 film the same O 1s is adsorbed oxygen or a hydroxide, and its
name stays neutral: ``"O 1s @ 531.5 eV"``. Windows are +-0.5 to 1 eV around literature values for
lithium-battery interphases (NIST X-ray Photoelectron Spectroscopy Database SRD 20; Wood et al.,
Chem. Mater. 2016 for Li3N; Ji et al., for Li-B); a name remains a suggestion, which a template
should confirm.
"""
from __future__ import annotations

#: (line, lowest BE, highest BE, species) in eV, charge-corrected to C 1s 284.8
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

#: what else a chemistry name needs in the file: ``(line, lowest, highest)`` = a feature of that line
#: in that window (charge-corrected eV); ``(line, None, None)`` = that line measured with a feature
EVIDENCE: dict[tuple[str, str], tuple[tuple[str, float | None, float | None], ...]] = {
    ("Li 1s", "Li2O"): (("O 1s", 527.8, 529.5),),
    ("Li 1s", "LiF"): (("F 1s", 684.3, 686.0),),
    ("B 1s", "Li-B"): (("Li 1s", None, None),),
    ("B 1s", "B-N"): (("N 1s", None, None),),
    ("B 1s", "B-O"): (("O 1s", None, None),),
    ("N 1s", "Li3N"): (("Li 1s", None, None),),
    ("C 1s", "C-O"): (("O 1s", None, None),),
    ("C 1s", "Li2CO3"): (("O 1s", 530.8, 532.5), ("Li 1s", None, None)),
    ("O 1s", "Li2O"): (("Li 1s", 53.3, 54.5),),
    ("O 1s", "Li2CO3"): (("C 1s", 289.0, 290.8), ("Li 1s", None, None)),
}


def species_name(region: str, be_eV: float) -> str | None:
    """The species whose window holds ``be_eV`` in ``region``, or None (none, or ambiguous).

    Position only: :func:`chemistry_name` is what names a component (it asks for the evidence).
    """
    hits = [name for reg, lo, hi, name in WINDOWS if reg == region and lo <= be_eV <= hi]
    return hits[0] if len(hits) == 1 else None


def neutral_name(line: str, be_eV: float) -> str:
    """``"O 1s @ 531.5 eV"``: a component named by its line and position only."""
    return f"{line} @ {be_eV:.1f} eV"


def _describe(req) -> str:
    line, lo, hi = req
    return f"no {line} line" if lo is None else f"no {line} feature at {lo:g}-{hi:g} eV"


def chemistry_name(line: str, be_eV: float, evidence: dict[str, list[float]]) -> tuple[str | None, str | None]:
    """The chemistry name of a component at ``be_eV`` in ``line``, when the file supports it.

    Parameters
    ----------
    line : str
        The component's core line (``"O 1s"``).
    be_eV : float
        Charge-corrected binding energy.
    evidence : dict
        ``{line: [charge-corrected positions of the features found]}`` over the whole file (picked
        peaks and template components).

    Returns
    -------
    (name or None, note or None)
        ``note`` says why a window's name was not given (for a warning).
    """
    name = species_name(line, be_eV)
    if name is None:
        return None, None
    missing = []
    for req in EVIDENCE.get((line, name), ()):
        rl, lo, hi = req
        found = evidence.get(rl) or []
        ok = bool(found) if lo is None else any(lo <= b <= hi for b in found)
        if not ok:
            missing.append(_describe(req))
    if missing:
        return None, (f"{line} at {be_eV:.1f} eV is in the {name} window, but the file has {' and '.join(missing)}: "
                      f"not named {name}")
    return name, None
