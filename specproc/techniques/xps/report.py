"""The XPS report section: species summary, charge references, spectra per region, depth profiles, heatmaps."""
from __future__ import annotations

from ...core.result import Figures
from ...core.section import ReportSection

TITLE = "XPS"


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
            comps.append(first.assign(sample=r.sample)[["sample", "region", "name", "be_eV", "be_eV_stderr", "fwhm_eV",
                                                          "area", "atomic_percent", "atomic_percent_stderr",
                                                          "at_bound"]])
    tables = []
    if refs:
        tables.append(("XPS: charge reference, sputter rate and interphase", pd.DataFrame(refs)))
    if species:
        tables.append(("XPS: species (presence at the detection limit, 50 % thickness)", pd.DataFrame(species)))
    if comps:
        tables.append(("XPS: components at the first level", pd.concat(comps, ignore_index=True)))
    plots = Figures(results)
    intro = ("Binding energies charge-corrected to the reference line (one shift per sample, every region and level); "
             "Shirley/Tougaard backgrounds; one component template fitted to every etch level with the batch engine; "
             "atomic % from areas and Scofield RSFs; thickness = depth where the at % falls to 50 % of its maximum.")
    return ReportSection("xps", TITLE, intro, tables, plots, list(results))
