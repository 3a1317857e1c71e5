"""Edge onset table and edge recipes (the science that is specific to an EELS edge).

Onset energies (eV) are the tabulated ionisation thresholds of the Gatan EELS atlas / Egerton (2011),
Appendix D, rounded to 1 eV. They place the *automatic* windows (pre-edge background, fine
structure) relative to the edge; the fitted positions never depend on them beyond those windows.

A recipe (:class:`EdgeRecipe`) is written relative to the tabulated onset ``E0``:

* pre-edge background window ``[E0 + pre[0], E0 + pre[1]]``;
* π* peak: centre bounded in ``[E0 + pi_center[0], E0 + pi_center[1]]``, Gaussian sigma in ``pi_sigma``;
* continuum edge step: a smooth step that starts ``step_offset`` eV above the π* centre and rises
  over ``step_width`` eV (it moves with π*: a chemical shift moves the whole edge);
* σ* region: one broad Gaussian, centre bounded in ``[E0 + sigma_center[0], E0 + sigma_center[1]]``
  (always above the highest π* centre, so π* cannot run into σ*), sigma in ``sigma_sigma``;
* fit window ``[E0 + pre[0], E0 + fit_hi]``.

All fine-structure intensities (π*, σ*, step height) are bounded non-negative.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...core.errors import ParameterError

#: edge -> tabulated onset (eV)
ONSETS: dict[str, float] = {
    "Li K": 55.0, "Be K": 111.0, "B K": 188.0, "C K": 284.0, "N K": 401.0, "O K": 532.0, "F K": 685.0,
    "Na K": 1072.0, "Mg K": 1305.0, "Al K": 1560.0, "Si K": 1839.0, "Si L3": 99.0, "P L3": 132.0,
    "S L3": 165.0, "Cl L3": 200.0, "Ca L3": 346.0, "Ti L3": 456.0, "V L3": 513.0, "Cr L3": 575.0,
    "Mn L3": 640.0, "Fe L3": 708.0, "Co L3": 779.0, "Ni L3": 855.0, "Cu L3": 931.0, "Zn L3": 1020.0,
    "Sr L3": 1940.0, "Ba M5": 781.0, "La M5": 832.0, "Ce M5": 883.0,
}


@dataclass(frozen=True)
class EdgeRecipe:
    """Windows and bounds of an edge fit, relative to the tabulated onset (eV)."""

    edge: str
    onset: float
    pre: tuple[float, float] = (-30.0, -6.0)
    pi_center: tuple[float, float] = (-4.0, 7.0)
    pi_sigma: tuple[float, float] = (0.15, 2.0)
    step_offset: float = 1.5
    step_width: float = 3.0
    sigma_center: tuple[float, float] = (8.0, 30.0)
    sigma_sigma: tuple[float, float] = (2.0, 10.0)
    fit_hi: float = 32.0

    def window(self, which: str) -> tuple[float, float]:
        """Absolute window (eV): ``pre``, ``pi_center``, ``sigma_center`` or ``fit``."""
        if which == "fit":
            return self.onset + self.pre[0], self.onset + self.fit_hi
        lo, hi = getattr(self, which)
        return self.onset + lo, self.onset + hi


#: edges with a π*/σ* near-edge recipe (K edges of second-row elements with π bonding)
RECIPES: dict[str, EdgeRecipe] = {e: EdgeRecipe(e, ONSETS[e]) for e in ("B K", "C K", "N K", "O K")}


def normalise_edge(edge: str) -> str:
    """``"b k"``, ``"B_K"``, ``"B-K"`` -> ``"B K"`` (element capitalised, shell upper case)."""
    parts = str(edge).replace("_", " ").replace("-", " ").split()
    if len(parts) != 2:
        raise ParameterError(f"edge {edge!r}: expected '<element> <shell>', e.g. 'B K'")
    return f"{parts[0].capitalize()} {parts[1].upper()}"


def recipe(edge: str) -> EdgeRecipe:
    """The near-edge recipe of ``edge`` (ParameterError naming the supported edges)."""
    name = normalise_edge(edge)
    if name not in RECIPES:
        known = ", ".join(RECIPES)
        where = " (its onset is tabulated, but no π*/σ* recipe exists)" if name in ONSETS else ""
        raise ParameterError(f"edge {edge!r}{where}: π* fitting is available for {known}")
    return RECIPES[name]
