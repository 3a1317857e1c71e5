"""The XPS report section: species summary, charge references, spectra per region, depth profiles, heatmaps."""
from __future__ import annotations

from ...core.result import Figures
from ...core.section import MappedFigures, ReportSection

from ...plugins import get as _plugin

TITLE = _plugin("techniques", "xps").title  # the one definition: the Technique declared in __init__.py


def report_section(results) -> ReportSection:
    """Tables (species per sample, charge reference, components at the surface) and every plot of the results."""
    import pandas as pd

    results = [r for r in results if getattr(r, "technique", "") == "xps"]
    species, refs, comps = [], [], []
    for r in results:
        unit = r.meta.get("depth_unit", "nm")
        if "species" in r.tables:
            for row in r.tables["species"].to_dict(orient="records"):
                species.append({"sample": r.sample, "species": row["species"], "present": row["present"],
                                "verdict": row.get("verdict"),
                                "max_at%": row["max_atomic_percent"], "max_at%_stderr": row["max_atomic_percent_stderr"],
                                f"thickness ({unit})": row.get(f"thickness_{unit}"),
                                "thickness_stderr": row.get(f"thickness_{unit}_stderr")})
        q = r.quantities
        it = q.get(f"interphase.thickness_{unit}")
        cs = q.get("charge_shift_eV")
        refs.append({"sample": r.sample, "charge reference": r.meta.get("charge_reference"),
                     "shift_eV": cs.value if cs else None, "shift_stderr": cs.stderr if cs else None,
                     "sputter_rate_nm_s": r.meta.get("sputter_rate_nm_s"), "background": r.meta.get("background"),
                     "detection limit (at%)": r.meta.get("detection_limit_at_percent"),
                     "interphase": "+".join(r.meta.get("interphase_species") or []) or None,
                     f"interphase thickness ({unit})": it.value if it else None,
                     "interphase_stderr": it.stderr if it else None})
        t = r.tables.get("components")
        if t is not None and len(t):
            first = t[t["level"] == t["level"].min()]
            cols = ["sample", "region", "line", "name", "be_eV", "be_eV_stderr", "fwhm_eV", "area", "atomic_percent",
                    "atomic_percent_stderr", "at_bound", "detected", "basis"]
            first = first.assign(sample=r.sample)
            comps.append(first[[c for c in cols if c in first.columns]])
    tables = []
    if refs:
        tables.append(("XPS: charge reference, sputter rate and interphase", pd.DataFrame(refs)))
    if species:
        tables.append(("XPS: species (presence at the detection limit, 50 % thickness)", pd.DataFrame(species)))
    if comps:
        tables.append(("XPS: components at the first level", pd.concat(comps, ignore_index=True)))
    unq = [dict(sample=r.sample, **row) for r in results if "regions" in r.tables
           for row in r.tables["regions"].to_dict(orient="records") if not row.get("quantified")]
    if unq:
        tables.append(("XPS: regions not quantified (and why)", pd.DataFrame(unq)))
    plots = MappedFigures(Figures(results), _xps_convention)
    intro = ("Binding energies charge-corrected to the reference line (one shift per sample, every region and level); "
             "Shirley/Tougaard backgrounds; one component template fitted to every etch level with the batch engine; "
             "atomic % from areas and Scofield RSFs (counts as count rates); a template component without signal near "
             "its start is not detected there (no at %); chemistry names of automatic components only with "
             "consistent evidence; surveys quantified apart; thickness = depth where the at % falls to 50 % of its "
             "maximum.")
    return ReportSection("xps", TITLE, intro, tables, plots, list(results), explain=explain)


def _xps_convention(spec: dict) -> dict:
    """Depth heatmaps in the XPS convention: binding energy decreasing to the right, the plot spanning
    the region (no equal aspect: energy and depth are different quantities), the surface on top."""
    if spec.get("kind") == "map":
        return dict(spec, reverse_x=True, reverse_y=True, equal_aspect=False)
    return spec


def explain(result, quantity: str) -> str | None:
    """What the presence call ``species(X).present`` rests on: the species' maximum atomic % (± 2σ) against
    the detection limit, and how many standard errors it lies above or below it."""
    import math

    from ...core.result import quantity_name

    if "species" not in result.tables:
        return None
    # the species whose presence quantity this is: matched by the name its key gives, nothing parsed
    rows = [row for row in result.tables.records("species")
            if quantity_name(f"species({row.get('species')})", "present") == quantity]
    if not rows:
        q = result.quantities.get(quantity)
        return None if q is None or q.property != "present" else f"{q.component} is not in the fitted model"

    def num(v):
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

    row = rows[0]
    mx, se = num(row.get("max_atomic_percent")), num(row.get("max_atomic_percent_stderr"))
    dl = num(row.get("detection_limit_at_percent"))
    if dl is None:
        dl = num(result.meta.get("detection_limit_at_percent"))
    if mx is None:  # the fit found no signal of the species at any level
        return ("not detected at any etch level" if row.get("detected") is False else "no atomic % available") + (
            f"; detection limit {dl:g} at %" if dl is not None else "")
    lvl = row.get("level_of_max")
    txt = f"maximum {mx:.3g}" + (f" ± {2 * se:.2g}" if se else "") + " at %" + (" (± 2σ)" if se else "") + (
        f" at etch level {lvl}" if lvl is not None else "")
    if dl is not None:
        txt += f"; detection limit {dl:g} at %"
        if se:
            z = (mx - dl) / se
            txt += f": {abs(z):.1f}σ {'above' if z > 0 else 'below'} it"
    return txt
