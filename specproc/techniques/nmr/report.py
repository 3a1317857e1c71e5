"""The NMR report section: per-nucleus summary tables and the fit plots."""
from __future__ import annotations

from ...core.result import Figures
from ...core.section import ReportSection

from ...plugins import get as _plugin

TITLE = _plugin("techniques", "nmr").title  # the one definition: the Technique declared in __init__.py


def report_section(results) -> ReportSection:
    """Summary table per nucleus (sample, component, shift, FWHM, fraction) + every fit plot."""
    import pandas as pd

    results = [r for r in results if getattr(r, "processor", "") == "nmr.deconvolve"]
    rows = []
    for r in results:
        for row in r.records():
            rows.append({"nucleus": r.meta.get("nucleus"), "sample": r.sample, "component": row["name"],
                         "shift_ppm": row["center_ppm"], "shift_stderr": row["center_ppm_stderr"],
                         "fwhm_ppm": row["fwhm_ppm"], "area_fraction": row["area_fraction"],
                         "area_fraction_stderr": row["area_fraction_stderr"], "shape": row["shape"]})
    tables = []
    if rows:
        df = pd.DataFrame(rows)
        for nuc, sub in df.groupby(df["nucleus"].fillna("?"), sort=True):
            tables.append((f"{nuc} NMR: components", sub.drop(columns="nucleus").reset_index(drop=True)))
    plots = Figures(results)
    intro = ("Spectra deconvolved with lmfit; area fractions include spinning sidebands, errors from the "
             "full fit covariance.")
    return ReportSection("nmr", TITLE, intro, tables, plots, list(results))
