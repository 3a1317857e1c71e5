"""The XRD report section: phases per sample, lattice parameters, reflections, pattern plots."""
from __future__ import annotations

from ...core.result import Figures
from ...core.section import ReportSection

TITLE = "X-ray diffraction"


def report_section(results) -> ReportSection:
    """Phase table (score, present, refined cell), reflection table and every pattern plot with phase ticks."""
    import pandas as pd

    results = [r for r in results if getattr(r, "processor", "") == "xrd.analyse"]
    phase_rows, peak_rows, other = [], [], []
    for r in results:
        ph = r.tables.get("phases")
        if ph is not None and len(ph):
            status = ph["status"] if "status" in ph else ph["present"].map({True: "present", False: "absent"})
            shown = status != "absent"
            for row in ph[shown].to_dict(orient="records"):
                phase_rows.append({"sample": r.sample, "phase": row["name"], "status": row.get("status"),
                                   "texture": row.get("texture"), "space_group": row["space_group"],
                                   "score": row["score"], "a_nm": row["a_nm"], "b_nm": row["b_nm"],
                                   "c_nm": row["c_nm"], "volume_nm3": row["volume_nm3"],
                                   "reasons": row.get("reasons")})
            if not shown.any():
                phase_rows.append({"sample": r.sample, "phase": "(none identified)"})
        pk = r.tables.get("peaks")
        if pk is not None and len(pk):
            peak_rows.append(pk.assign(sample=r.sample)[["sample", "phase", "hkl", "two_theta_deg", "d_nm",
                                                         "d_nm_stderr", "fwhm_deg", "area", "texture_ratio"]])
        q = r.quantities
        other.append({"sample": r.sample, "scan_type": r.meta.get("scan_type"),
                      "wavelength_nm": r.meta.get("wavelength_nm"),
                      "crystallite_size_nm": q["crystallite_size_nm"].value if "crystallite_size_nm" in q else None,
                      "instrument_broadening": r.meta.get("instrument_broadening") if "crystallite_size_nm" in q
                      else None,
                      "amorphous_fraction": q["amorphous_fraction"].value if "amorphous_fraction" in q else None,
                      "n_peaks": r.stats.get("n_peaks"), "warnings": len(r.warnings)})
    tables = []
    if phase_rows:
        tables.append(("XRD: identified phases and refined cells", pd.DataFrame(phase_rows)))
    if other:
        tables.append(("XRD: per-sample summary", pd.DataFrame(other)))
    if peak_rows:
        tables.append(("XRD: indexed reflections", pd.concat(peak_rows, ignore_index=True)))
    warn_rows = [{"sample": r.sample, "warning": w} for r in results for w in r.warnings]
    if warn_rows:
        tables.append(("XRD: warnings", pd.DataFrame(warn_rows)))
    plots = Figures(results)
    intro = ("Backgrounds by SNIP (pybaselines); each reflection fitted with its Kα2 line as a tied satellite "
             "(shared ModelSpec, batch-engine optimum confirmed by lmfit; parameters at a bound carry no error "
             "and are listed as warnings); d from Bragg's law with the file's Kα1 wavelength. Phases by "
             "search–match against literature cells, positions first (anisotropic cell search, score from the "
             "matched fraction of strong reflections by count and by intensity; present at ≥ 0.6, probable "
             "near it, texture flagged when intensities disagree); cells refined by least squares on the "
             "indexed reflections. High-resolution (single-crystal / epitaxial) scans get positions only; "
             "a crystallite size needs an identified phase and states the instrumental-broadening correction.")
    return ReportSection("xrd", TITLE, intro, tables, plots, list(results), explain=explain)


def explain(result, quantity: str) -> str | None:
    """What the presence call ``phase(X).present`` of ``result`` rests on: strong reflections matched
    (coverage), the chance of as many coincidences, the score against the presence threshold."""
    import math
    import re

    m = re.fullmatch(r"phase\((.+)\)\.present", quantity)
    if m is None or "phases" not in result.tables:
        return None
    rows = [row for row in result.tables.records("phases") if str(row.get("name")) == m.group(1)]
    if not rows:
        return f"{m.group(1)} is not among the candidate phases searched"

    def num(v):
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

    row = rows[0]
    parts = []
    n_m, n_s, cov = num(row.get("n_matched")), num(row.get("n_strong")), num(row.get("coverage"))
    if n_s:
        parts.append(f"{n_m:.0f} of {n_s:.0f} strong reflections matched" + (f" (coverage {cov:.2f})"
                                                                            if cov is not None else ""))
    p = num(row.get("p_chance"))
    if p is not None:
        parts.append(f"probability of as many chance coincidences p = {p:.2g}")
    sc = num(row.get("score"))
    if sc is not None:
        parts.append(f"score {sc:.2f} (present at ≥ 0.6)")
    if row.get("reasons"):  # the search-match's own words, less what is said above
        said = f"{n_m:.0f} of {n_s:.0f} strong reflections matched" if n_s else None
        parts += [x for x in str(row["reasons"]).split("; ") if x and not (said and x.startswith(said))]
    return "; ".join(parts) or None
