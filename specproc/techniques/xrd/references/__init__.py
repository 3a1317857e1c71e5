"""Built-in reference structures (literature cells) and user CIFs -> stick patterns.

Each built-in entry gives the space group (number and symbol), the cell (Å, as published),
atomic positions where known (Wyckoff site and free parameters, xrayutilities convention) and
its literature source. Hydrogen is omitted in the borohydride / amidoborane entries (weak
X-ray scatterer; positions from X-ray data are unreliable) — their intensities are therefore
approximate. LiNH2BH3 has no atomic positions here (not verified against the publication):
its sticks carry *positions* from the cell and space-group extinctions, with intensities from
multiplicity and Lorentz–polarisation only (``intensity_model = "lattice-only"``).

Structure factors, allowed reflections and equivalent reflections come from xrayutilities
(``SGLattice``, ``Crystal.StructureFactorForQ``); only the d-spacing formula of a refined cell is
evaluated here (it must be re-evaluated thousands of times during lattice refinement).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ....core.errors import ParameterError, ReaderError

#: Built-in references: name -> definition. Cells in Å (converted to nm in results).
BUILTIN: dict[str, dict] = {
    "LiBH4": dict(
        space_group="Pnma", sg_number=62, cell=dict(a=7.17858, b=4.43686, c=6.80321),
        atoms=[("Li", "4c", (0.1568, 0.1015)), ("B", "4c", (0.3040, 0.4305))],
        source="Soulié, Renaudin, Černý, Yvon, J. Alloys Compd. 346 (2002) 200 (room temperature, "
               "synchrotron XRD); H omitted"),
    "LiBH4-HT": dict(
        space_group="P63mc", sg_number=186, cell=dict(a=4.27631, c=6.94844),
        atoms=[("Li", "2b", (0.0,)), ("B", "2b", (0.5530,))],
        source="Soulié et al., J. Alloys Compd. 346 (2002) 200 (high-temperature phase, 408 K); H omitted"),
    "LiNH2BH3": dict(
        space_group="Pbca", sg_number=61, cell=dict(a=7.1051, b=13.9300, c=5.1477), atoms=None,
        source="Xiong et al., Nat. Mater. 7 (2008) 138 (cell as given in the project brief; atomic "
               "positions not verified -> lattice-only intensities)"),
    "Li3N": dict(
        space_group="P6/mmm", sg_number=191, cell=dict(a=3.648, c=3.875),
        atoms=[("N", "1a", None), ("Li", "1b", None), ("Li", "2c", None)],
        source="Rabenau & Schulz, J. Less-Common Met. 50 (1976) 155 (alpha-Li3N)"),
    "LiH": dict(
        space_group="Fm-3m", sg_number=225, cell=dict(a=4.083),
        atoms=[("Li", "4a", None), ("H", "4b", None)],
        source="rock-salt LiH, a = 4.083 Å at room temperature (e.g. Zintl & Harder, Z. Phys. Chem. B 14 "
               "(1931) 265)"),
    "Li2O": dict(
        space_group="Fm-3m", sg_number=225, cell=dict(a=4.61),
        atoms=[("O", "4a", None), ("Li", "8c", None)],
        source="antifluorite Li2O, Farley et al., J. Phys.: Condens. Matter 3 (1991) 4761 (a = 4.61 Å, 293 K)"),
    "LiCoO2": dict(
        space_group="R-3m", sg_number=166, cell=dict(a=2.816, c=14.05),
        atoms=[("Co", "3a", None), ("Li", "3b", None), ("O", "6c", (0.2396,))],
        source="Akimoto, Gotoh, Oosawa, J. Solid State Chem. 141 (1998) 298 (hexagonal setting)"),
    "Si": dict(
        space_group="Fd-3m", sg_number=227, cell=dict(a=5.431179), atoms=[("Si", "8a", None)],
        source="NIST SRM 640e line-position standard, a = 5.431179 Å (22.5 °C)"),
    "LaB6": dict(
        space_group="Pm-3m", sg_number=221, cell=dict(a=4.15689), atoms=[("La", "1a", None), ("B", "6f", (0.1996,))],
        source="NIST SRM 660b line-profile standard, a = 4.15689 Å; B x = 0.1996 (approx.)"),
}

_SYSTEM_PARAMS = {"cubic": ("a",), "tetragonal": ("a", "c"), "hexagonal": ("a", "c"), "trigonal": ("a", "c"),
                  "orthorhombic": ("a", "b", "c")}


def d_spacing(hkl, system: str, a, b=None, c=None):
    """d-spacings (same unit as the cell) of reflections ``hkl`` (n, 3) for a crystal system.

    Closed forms of the reciprocal metric for the systems that lattice refinement supports
    (cubic, tetragonal, orthorhombic, hexagonal/trigonal in the hexagonal setting).
    """
    hkl = np.atleast_2d(np.asarray(hkl, float))
    h, k, l = hkl[:, 0], hkl[:, 1], hkl[:, 2]
    if system == "cubic":
        inv = (h**2 + k**2 + l**2) / a**2
    elif system == "tetragonal":
        inv = (h**2 + k**2) / a**2 + l**2 / c**2
    elif system == "orthorhombic":
        inv = h**2 / a**2 + k**2 / b**2 + l**2 / c**2
    elif system in ("hexagonal", "trigonal"):
        inv = 4.0 / 3.0 * (h**2 + h * k + k**2) / a**2 + l**2 / c**2
    else:
        raise ParameterError(f"crystal system {system!r} is not supported for d-spacings / refinement")
    return 1.0 / np.sqrt(inv)


def hkl_label(hkl) -> str:
    """``(1, 0, 1) -> "101"``; indices > 9 or negative are comma-separated (``"1,0,10"``)."""
    h = [int(v) for v in hkl]
    if all(0 <= v <= 9 for v in h):
        return "".join(str(v) for v in h)
    return ",".join(str(v) for v in h)


@dataclass
class Reference:
    """A reference phase: cell, crystal system and its unique reflections with |F|² and multiplicity."""

    name: str
    space_group: str
    sg_number: int
    system: str
    cell: dict                       # Å: a, b, c (only the free ones matter)
    hkl: np.ndarray                  # (n, 3) one representative per equivalence class
    multiplicity: np.ndarray
    f2: np.ndarray                   # |F|² at the reference cell (1 for lattice-only)
    source: str = ""
    intensity_model: str = "structure-factor"
    extra: dict = field(default_factory=dict)

    @property
    def lattice_params(self) -> tuple[str, ...]:
        return _SYSTEM_PARAMS[self.system]

    def full_cell(self, cell: dict | None = None) -> dict:
        c = dict(self.cell if cell is None else cell)
        a = c["a"]
        b = c.get("b") if self.system == "orthorhombic" else a
        cc = c.get("c") if self.system != "cubic" else a
        return {"a": a, "b": b, "c": cc}

    def d(self, cell: dict | None = None) -> np.ndarray:
        """d-spacings (Å) of all reflections for ``cell`` (default: the reference cell)."""
        c = self.full_cell(cell)
        return d_spacing(self.hkl, self.system, c["a"], c["b"], c["c"])

    def sticks(self, wavelength_nm: float, two_theta_range=(0.0, 180.0), cell: dict | None = None,
               min_rel: float = 0.0):
        """Stick pattern: dict of arrays ``two_theta``, ``d_nm``, ``intensity`` (strongest reflection of
        the phase above 5° 2θ = 100, even when outside the range), ``hkl``, ``label``.

        Intensity = multiplicity × |F|² × Lorentz–polarisation (Bragg–Brentano, no monochromator).
        """
        lam = wavelength_nm * 10.0
        d = self.d(cell)
        s = lam / (2 * d)
        ok = s < 1
        tt = np.full(d.shape, np.nan)
        tt[ok] = 2 * np.degrees(np.arcsin(s[ok]))
        th = np.radians(tt / 2)
        lp = (1 + np.cos(2 * th) ** 2) / (np.sin(th) ** 2 * np.cos(th))
        inten = self.multiplicity * self.f2 * lp
        # relative to the phase's strongest reflection at this wavelength (not the strongest in
        # range): a narrow scan must not promote weak reflections to "strong". Only reflections with
        # d >= NORM_D_MIN compete: the Lorentz-polarisation factor diverges towards 2θ = 180°, and the
        # reflections down to D_MIN (kept for their positions: LaB6 (333)/(511) at 148.7° for Cu) must
        # not rescale every other intensity
        norm = ok & (tt > 5.0) & (d >= NORM_D_MIN)
        top = np.nanmax(np.where(norm, inten, np.nan)) if np.any(norm) else 1.0
        sel = ok & (tt >= two_theta_range[0]) & (tt <= two_theta_range[1])
        out_i = 100 * inten[sel] / top
        keep = out_i >= min_rel
        order = np.argsort(tt[sel][keep])
        hkl = self.hkl[sel][keep][order]
        return {"two_theta": tt[sel][keep][order], "d_nm": d[sel][keep][order] / 10.0,
                "intensity": out_i[keep][order], "hkl": hkl, "label": [hkl_label(h) for h in hkl]}

    def describe(self) -> dict:
        return {"name": self.name, "space_group": self.space_group, "system": self.system,
                "cell_angstrom": self.cell, "source": self.source, "intensity_model": self.intensity_model}


def _canonical(eq: list, system: str):
    """Representative of a class of equivalent reflections: non-negative indices when possible."""
    def key(h):
        return (sum(v < 0 for v in h), tuple(-v for v in h))
    return min((tuple(int(v) for v in h) for h in eq), key=key)


#: reflections are listed down to this d-spacing (Å): the whole Cu range (2θ = 180° at d = 0.770 Å)
D_MIN = 0.75
#: ... and intensities are relative to the strongest reflection with d >= NORM_D_MIN (Å)
NORM_D_MIN = 0.8


def _from_lattice(name, lat, crystal, source, space_group, d_min=D_MIN, system=None, energy_ev=8047.8):
    """Unique allowed reflections down to ``d_min`` Å with multiplicity and |F|²."""
    system = (system or lat.crystal_system).split(":")[0]
    if system.startswith("trigonal"):
        system = "trigonal"
    if system not in _SYSTEM_PARAMS:
        raise ReaderError(f"reference {name!r}: crystal system {system} not supported (cubic, tetragonal, "
                          f"orthorhombic, hexagonal, trigonal)")
    allowed = sorted(lat.get_allowed_hkl(2 * np.pi / d_min))
    seen, reps, mult = set(), [], []
    for h in allowed:
        if h in seen or h == (0, 0, 0):
            continue
        eq = {tuple(int(v) for v in e) for e in lat.equivalent_hkls(h)}
        eq |= {tuple(-v for v in e) for e in eq}  # Friedel pairs coincide in a powder pattern
        seen |= eq
        reps.append(_canonical(list(eq), system))
        mult.append(len(eq))
    hkl = np.array(reps, int)
    if crystal is not None:
        q = np.array([crystal.Q(h) for h in hkl])
        f2 = np.abs(crystal.StructureFactorForQ(q, energy_ev)) ** 2
        model = "structure-factor"
    else:
        f2 = np.ones(len(hkl))
        model = "lattice-only"
    cell = {"a": float(lat.a)}
    if system == "orthorhombic":
        cell["b"] = float(lat.b)
    if system != "cubic":
        cell["c"] = float(lat.c)
    return Reference(name, space_group, int(lat.space_group_nr), system, cell, hkl, np.array(mult), f2,
                     source, model)


@functools.lru_cache(maxsize=None)
def builtin(name: str) -> Reference:
    """The built-in reference ``name`` (see :data:`BUILTIN`)."""
    from xrayutilities.materials import Crystal, SGLattice
    from xrayutilities.materials import elements as el

    if name not in BUILTIN:
        raise ParameterError(f"no built-in reference phase {name!r}; known: {', '.join(BUILTIN)}")
    spec = BUILTIN[name]
    cell = spec["cell"]
    lat_params = [cell[k] for k in ("a", "b", "c") if k in cell]
    atoms, pos = [], []
    for sym, site, par in spec["atoms"] or []:
        atoms.append(getattr(el, sym))
        pos.append(site if par is None else (site, par))
    lat = SGLattice(spec["sg_number"], *lat_params, atoms=atoms or None, pos=pos or None)
    crystal = Crystal(name, lat) if atoms else None
    return _from_lattice(name, lat, crystal, spec["source"], spec["space_group"])


def from_cif(path: str | Path) -> Reference:
    """A reference from a CIF file (read with ``xrayutilities.materials.Crystal.fromCIF``)."""
    from xrayutilities.materials import Crystal

    p = Path(path)
    if not p.is_file():
        raise ReaderError("reference CIF not found", p)
    try:
        crystal = Crystal.fromCIF(str(p))
    except Exception as exc:
        raise ReaderError(f"cannot read CIF: {type(exc).__name__}: {exc}", p) from None
    lat = crystal.lattice
    name = cif_phase_name(p) or p.stem
    sg = str(getattr(lat, "space_group", "")).split(":")[0]
    return _from_lattice(name, lat, crystal if len(list(lat.base())) else None, f"CIF file {p.name}", sg)


_CIF_NAME_TAGS = ("_chemical_name_mineral", "_chemical_name_common", "_pd_phase_name", "_chemical_name_structure_type",
                  "_chemical_name_systematic")


def cif_phase_name(path: Path) -> str | None:
    """A readable phase name from a CIF: mineral / common / phase name, else None (the caller uses the file stem).

    xrayutilities names a crystal by its formula (``Ca C O3``), which is neither readable nor unique; the
    CIF's own name tags are what users recognise (``Calcite``).
    """
    import re

    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for tag in _CIF_NAME_TAGS:
        m = re.search(rf"^{tag}\s+(?:'([^'\n]*)'|\"([^\"\n]*)\"|([^\s'\";][^\n]*?))\s*$", text, re.M | re.I)
        if m is None:
            # a multi-line ;-delimited value
            m2 = re.search(rf"^{tag}\s*\n;\s*([^\n]+)", text, re.M | re.I)
            val = m2.group(1) if m2 else None
        else:
            val = next(g for g in m.groups() if g is not None)
        val = (val or "").strip()
        if val and val not in ("?", "."):
            return val[:60]
    return None


def get_references(names=None, cif_paths=()) -> list[Reference]:
    """Built-ins ``names`` (default: all) plus user CIFs.

    A CIF whose name equals a built-in (or an earlier CIF) gets the file name appended
    (``Si (Silicon.cif)``), so two references never share a name in tables and quantity names.
    """
    names = list(BUILTIN) if names is None else list(names)
    refs = [builtin(n) for n in names]
    taken = {r.name.lower() for r in refs} | {n.lower() for n in BUILTIN}
    for p in cif_paths:
        ref = from_cif(p)
        if ref.name.lower() in taken:
            ref.name = f"{ref.name} ({Path(p).name})"
        k = 2
        base = ref.name
        while ref.name.lower() in taken:
            ref.name, k = f"{base} #{k}", k + 1
        taken.add(ref.name.lower())
        refs.append(ref)
    return refs
