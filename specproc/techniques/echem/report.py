"""The electrochemistry report section: conductivities, Arrhenius, polarisation, cycling; every plot."""
from __future__ import annotations

from ...core.result import Figures
from ...core.section import ReportSection

from ...plugins import get as _plugin

TITLE = _plugin("techniques", "echem").title  # the one definition: the Technique declared in __init__.py


def report_section(results) -> ReportSection:
    """Tables by kind (one row per spectrum / experiment) and every result's plots (Nyquist, Bode,
    KK residuals, Arrhenius, polarisation current, cycling voltage and overpotential)."""
    import pandas as pd

    results = [r for r in results if getattr(r, "processor", "") == "echem.analyse"]
    eis, arr, pol, cyc, warn = [], [], [], [], []
    for r in results:
        kind = r.meta.get("kind")
        entries = [r.meta.get("entry")] if kind == "eis" else (r.meta.get("entries") or [] if kind == "eis_series"
                                                               else [])
        for e in entries:
            eis.append({"sample": r.sample, "T_C": e["temperature_C"], "circuit": e["circuit"],
                        "R_bulk_ohm": e["R_bulk_ohm"], "R_bulk_ohm_stderr": e["R_bulk_ohm_stderr"],
                        "sigma_S_cm": e["conductivity_S_cm"], "sigma_stderr": e["conductivity_S_cm_stderr"],
                        "kk_max_pct": e["kk"]["max_residual_pct"], "kk_valid": e["kk"]["valid"],
                        "warnings": len(e["warnings"])})
        a = r.meta.get("arrhenius") if kind == "eis_series" else None
        if a:
            tr = a.get("transition") or {}
            st = a.get("step_test") or {}
            arr.append({"sample": r.sample, "Ea_eV": None if tr.get("present") else a["Ea_eV"],
                        "Ea_eV_stderr": None if tr.get("present") else a["Ea_eV_stderr"],
                        "transition": (f"{tr['kind']} at {tr['temperature_C']:.0f} °C" if tr.get("present") else "none"),
                        "jump_decades": tr.get("jump_decades") if tr.get("present") else None,
                        "Ea_low_T_eV": tr.get("Ea_low_eV") if tr.get("present") else None,
                        "Ea_high_T_eV": tr.get("Ea_high_eV") if tr.get("present") else None,
                        "step_test_C": st.get("temperature_C"), "step_decades": st.get("jump_decades"),
                        "step_decades_stderr": st.get("jump_decades_stderr")})
        if kind == "polarisation":
            row = (r.tables.records("polarisation") or [{}])[0]
            pol.append({"sample": r.sample, "T_C": r.meta.get("temperature_C"), **row})
        if kind == "galvanostatic":
            qv = r.quantities
            cyc.append({"sample": r.sample, "stepped": r.meta.get("stepped"),
                        "ccd_mA_cm2": qv["ccd_mA_cm2"].value if "ccd_mA_cm2" in qv else None,
                        "overpotential_mV": qv["overpotential_mV"].value if "overpotential_mV" in qv else None,
                        "duration_h": qv["cycling.duration_h"].value if "cycling.duration_h" in qv else None,
                        "short": bool(qv["short_circuit.present"].value), "failure": r.meta.get("failure")})
        warn += [{"sample": r.sample, "kind": kind, "warning": w} for w in r.warnings]
    tables = []
    for caption, rows in (("Impedance: electrolyte resistance and conductivity (one row per spectrum)", eis),
                          ("Arrhenius: activation energy, transitions, step test", arr),
                          ("DC polarisation: Bruce–Vincent t+ / electronic conductivity", pol),
                          ("Galvanostatic cycling: critical current density / overpotential", cyc),
                          ("Electrochemistry: warnings", warn)):
        if rows:
            tables.append((caption, pd.DataFrame(rows)))
    rule = next((r.meta.get("rule") for r in results if r.meta.get("rule")), None)
    intro = ("Equivalent circuits (impedance.py syntax) fitted to every spectrum by complex nonlinear least squares "
             "(modulus weighting, all spectra of a series in one batched fit); a linear Kramers–Kronig test flags "
             "spectra that drifted; R_bulk = series R + the electrolyte's arcs (above the window, or C·L/A <= 1e-8 F); "
             "σ = L/(R_bulk·A) with the thickness and area errors propagated. Arrhenius: ln(σT) vs 1/T with step / "
             "slope-change detection by BIC. Bruce–Vincent t+ from the current decay and the interfacial resistances "
             "before and after." + (f" Critical current density rule: {rule}." if rule else ""))
    return ReportSection("echem", TITLE, intro, tables, Figures(results), list(results))
