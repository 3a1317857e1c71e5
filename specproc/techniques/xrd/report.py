"""The XRD report section: phases per sample, lattice parameters, reflections, pattern plots."""
from __future__ import annotations

from ...core.result import Figures
from ...core.section import ReportSection

from ...plugins import get as _plugin

TITLE = _plugin("techniques", "xrd").title  # the one definition: the Technique declared in __init__.py


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
                                   "score": row["score"], "wp_p_value": row.get("wp_p_value"),
                                   "a_nm": row["a_nm"], "b_nm": row["b_nm"],
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
                      "n_peaks": r.stats.get("n_peaks"), "Rwp": r.stats.get("wp_rwp"),
                      "Rexp": r.stats.get("wp_rexp"), "chi2_red": r.stats.get("wp_chi2_red"),
                      "warnings": len(r.warnings)})
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
             "matched fraction of strong reflections by count and by intensity), then confirmed by a "
             "whole-pattern fit with free reflection intensities (TCH pseudo-Voigt, Kα1/Kα2, zero shift, "
             "Chebyshev background): a phase is present when adding it lowers χ² significantly (F-test) and "
             "its own resolved reflections are significant; cells and their esd's come from that fit, and the "
             "plots show observed, calculated and difference curves with tick marks per phase. "
             "High-resolution (single-crystal / epitaxial) scans get positions only; "
             "a crystallite size needs an identified phase and states the instrumental-broadening correction.")
    return ReportSection("xrd", TITLE, intro, tables, plots, list(results), explain=explain)


def pattern_plot(x, y, fp, wp, present, wavelength_nm, tt_range, title) -> dict:
    """The classic Rietveld-style plot as a spectrum spec (rendered by ``core.plotting``): observed points,
    calculated curve and background of the whole-pattern fit (of the peak fits without one), the difference
    in its own panel, and one row of tick marks per present or probable phase (its refined cell)."""
    import numpy as np

    if wp is not None and len(wp.calc) != len(y):  # the fit ran on the binned pattern: plot what it fitted
        x, y = wp.x, wp.y
    calc = wp.calc if wp is not None else fp["fit"]
    bg = wp.background if wp is not None else fp["background"]
    ticks = []
    for ref, mt in present:
        st = ref.sticks(wavelength_nm, tt_range, cell=mt["cell"], min_rel=1.0)
        ticks.append({"name": f"{ref.name} ({ref.space_group})", "positions": st["two_theta"],
                      "labels": st["label"]})
    stat = f" — Rwp {wp.rwp:.3f}, Rexp {wp.rexp:.3f}, χ²red {wp.gof2:.2f}" if wp is not None else ""
    return {"kind": "spectrum", "title": f"{title}{stat}", "x": np.asarray(x),
            "x_label": "2θ (deg)", "y_label": "intensity (counts)",
            "series": [{"name": "observed", "y": np.asarray(y), "role": "data"},
                       {"name": "calculated" if wp is not None else "fit", "y": np.asarray(calc), "role": "fit"},
                       {"name": "background", "y": np.asarray(bg), "role": "baseline"},
                       {"name": "observed − calculated", "y": np.asarray(y) - np.asarray(calc), "role": "residual"}],
            "ticks": ticks}


def explain(result, quantity: str) -> str | None:
    """What the presence call ``phase(X).present`` of ``result`` rests on: strong reflections matched
    (coverage), the chance of as many coincidences, the score against the presence threshold."""
    import math

    from ...core.result import quantity_name

    if "phases" not in result.tables:
        return None
    # the candidate whose presence quantity this is: matched by the name its key gives, nothing parsed
    rows = [row for row in result.tables.records("phases")
            if quantity_name(f"phase({row.get('name')})", "present") == quantity]
    if not rows:
        q = result.quantities.get(quantity)
        return None if q is None or q.property != "present" else f"{q.component} is not among the candidate phases searched"

    def num(v):
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

    row = rows[0]
    parts = []
    q = result.quantities
    name = rows[0]["name"]
    wpq = q.get(f"phase({name}).wholepattern_p")
    if wpq is not None:  # the whole-pattern test decides; the position screen is context
        dq = q.get(f"phase({name}).wholepattern_delta_chi2")
        nq = q.get(f"phase({name}).n_own_reflections")
        parts.append(f"whole-pattern fit: χ² drop {dq.value:.4g} when the phase is added (F-test p = {wpq.value:.2g})"
                     + (f", {nq.value:.0f} significant reflections of its own" if nq is not None else ""))
    for key, label in (("coverage", "position-screen coverage"), ("p_chance", "chance-match probability")):
        qq = q.get(f"phase({name}).{key}")
        if qq is not None and key == "p_chance" and "p_chance" not in row:
            parts.append(f"{label} p = {qq.value:.2g}")
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
        parts += [x for x in str(row["reasons"]).split("; ") if x and not (said and x.startswith(said))
                  and not x.startswith("whole-pattern fit: leaving")]
    return "; ".join(parts) or None
