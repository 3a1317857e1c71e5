"""The EELS report section: π* table of every spectrum, map summaries, fit plots, maps and histograms."""
from __future__ import annotations

from ...core.result import Figures
from ...core.section import ReportSection

from ...plugins import get as _plugin

TITLE = _plugin("techniques", "eels").title  # the one definition: the Technique declared in __init__.py


def report_section(results) -> ReportSection:
    """One row per spectrum / spectrum image (π* energy, FWHM, onset, π*/σ*), every plot of the results."""
    import pandas as pd

    results = [r for r in results if getattr(r, "processor", "") == "eels.fit_edge"]
    rows = []
    for r in results:
        q = r.quantities

        def val(name, q=q):
            return q[name].value if name in q else None

        def err(name, q=q):
            return q[name].stderr if name in q else None

        summary = r.meta.get("map_summary") or {}
        rows.append({"sample": r.sample, "edge": r.meta.get("edge"),
                     "kind": "spectrum image" if summary else "spectrum",
                     "pi*_eV": val("pi_star.energy_eV"), "pi*_stderr": err("pi_star.energy_eV"),
                     "pi*_median_eV": summary.get("median"), "pi*_sd_eV": summary.get("std"),
                     "valid_pixels": summary.get("n_valid"), "fwhm_eV": val("pi_star.fwhm_eV"),
                     "onset_eV": val("edge.onset_eV"), "pi/sigma": val("pi_sigma_ratio"),
                     "calibration": (r.meta.get("energy_calibration") or {}).get("method"),
                     "warnings": "; ".join(r.warnings)})
    tables = [("EELS: π* per spectrum / spectrum image", pd.DataFrame(rows))] if rows else []
    plots = Figures(results)
    intro = ("Near-edge fits: pre-edge power-law background (extrapolated with its covariance), π* as a "
             "Gaussian on a smooth continuum step that moves with it, σ* as a broad Gaussian bounded above "
             "the π* range; joint weighted least squares (batch engine; spectrum images pixel by pixel with "
             "warm starts). Onset = leading-edge half maximum of π*. Spectrum images: values are pixel means "
             "(error = standard error of the mean); failed pixels are masked.")
    return ReportSection("eels", TITLE, intro, tables, plots, list(results))
