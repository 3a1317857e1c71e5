"""The FTIR report section: band table, per-band shifts between samples, fit plots."""
from __future__ import annotations

from ...core.result import Figures
from ...core.section import ReportSection

from ...plugins import get as _plugin

TITLE = _plugin("techniques", "ftir").title  # the one definition: the Technique declared in __init__.py


def report_section(results) -> ReportSection:
    """Band table (centre, FWHM, height, area with errors, cross-checks), the baseline comparison
    (when a second baseline was fitted) and the modelled CO2, shifts of every band named in
    several samples relative to the first sample that has it, and every fit plot (data,
    baseline, bands, modelled CO2, residual; masked atmospheric / saturated ranges shaded; the
    second baseline's plot after the first)."""
    import pandas as pd

    results = [r for r in results if getattr(r, "processor", "") == "ftir.fit_bands"]
    rows = []
    for r in results:
        for row in r.table.to_dict(orient="records"):
            rows.append({"sample": r.sample, **{k: row.get(k) for k in (
                "name", "center_cm1", "center_cm1_stderr", "fwhm_cm1", "fwhm_cm1_stderr", "height", "area",
                "area_stderr", "max_cm1", "centroid_cm1", "noise_rms", "at_bound")},
                "y_kind": r.meta.get("y_kind"), "warnings": len(r.warnings)})
    tables = []
    if rows:
        tables.append(("FTIR: fitted bands", pd.DataFrame(rows)))
    cmp_rows = [{"sample": r.sample, **row} for r in results
                for row in (r.meta.get("baseline_comparison") or {}).get("rows", [])]
    if cmp_rows:
        tables.append(("FTIR: baseline comparison (same bands under two baselines; differences in standard errors "
                       "of the two fits added in quadrature)", pd.DataFrame(cmp_rows)))
    atm_rows = [{"sample": r.sample, **row} for r in results for row in (r.meta.get("co2_fit") or [])]
    if atm_rows:
        tables.append(("FTIR: atmospheric CO2 modelled (not sample bands)", pd.DataFrame(atm_rows)))
    shifts = _shifts(results)
    if shifts is not None:
        tables.append(("FTIR: band shifts (sample minus reference; reference = first sample with the band)", shifts))
    warn_rows = [{"sample": r.sample, "warning": w} for r in results for w in r.warnings]
    if warn_rows:
        tables.append(("FTIR: warnings", pd.DataFrame(warn_rows)))
    plots = Figures(results)
    intro = ("Bands fitted with lmfit through the shared model spec (pseudo-Voigt unless chosen otherwise) in "
             "absorbance; baselines fitted in the model or from pybaselines. Atmospheric CO2 and water vapour "
             "are recognised from their gas-phase line structure and masked (shaded); CO2 overlapping a band is "
             "modelled instead (the envelope of its rotational lines, shown as its own curve, never a band); "
             "saturated bands excluded. Errors from the full fit covariance; shifts propagate both errors. With a "
             "second baseline, each fit is shown under both and the differences are tabulated.")
    return ReportSection("ftir", TITLE, intro, tables, plots, list(results))


def _shifts(results):
    """Band shifts, sample minus reference (the first sample with the band), through the one
    comparison (:func:`specproc.evidence.pairwise` -> :func:`specproc.evidence.compare`)."""
    import pandas as pd

    from ...evidence.compare import pairwise

    bands = dict.fromkeys(name for r in results for name in r.meta.get("bands", []))
    rows = []
    for band in bands:
        if band.startswith("band_"):   # automatic names are positions, not identities
            continue
        with_band = [r for r in results if band in r.meta.get("bands", [])]
        for c in pairwise(with_band, f"{band}.center_cm1", op="difference"):
            rows.append({"band": band, "sample": c.sample, "reference": c.reference, "shift_cm1": c.value,
                         "shift_cm1_stderr": c.stderr,
                         "sigma": (c.value / c.stderr) if c.value is not None and c.stderr else None})
    return pd.DataFrame(rows) if rows else None
