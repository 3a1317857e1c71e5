"""The NMR report section: per-nucleus summary tables and the fit plots."""
from __future__ import annotations

import html
import json

from ...core.section import ReportSection

TITLE = "Solid-state NMR"


def report_section(results) -> ReportSection:
    """Summary table per nucleus (sample, component, shift, FWHM, fraction) + every fit plot."""
    import pandas as pd

    results = [r for r in results if getattr(r, "processor", "") == "nmr.deconvolve"]
    rows = []
    for r in results:
        for row in r.table.to_dict(orient="records"):
            rows.append({"nucleus": r.meta.get("nucleus"), "sample": r.sample, "component": row["name"],
                         "shift_ppm": row["center_ppm"], "shift_stderr": row["center_ppm_stderr"],
                         "fwhm_ppm": row["fwhm_ppm"], "fraction": row["area_fraction"],
                         "fraction_stderr": row["area_fraction_stderr"], "shape": row["shape"]})
    tables = []
    if rows:
        df = pd.DataFrame(rows)
        for nuc, sub in df.groupby(df["nucleus"].fillna("?"), sort=True):
            tables.append((f"{nuc} NMR: components", sub.drop(columns="nucleus").reset_index(drop=True)))
    plots = [p for r in results for p in r.plots]
    intro = ("Spectra deconvolved with lmfit; area fractions include spinning sidebands, errors from the "
             "full fit covariance.")
    return ReportSection("nmr", TITLE, intro, tables, plots, list(results))


def write_report(results, path, title: str = "specproc NMR report") -> None:
    """Write an HTML report: ``specproc.report.render_results`` when available, else a minimal
    self-contained page (plotly.js embedded, every string escaped)."""
    try:
        from ...report import render_results
    except ImportError:
        render_results = None
    if render_results is not None:
        render_results(results, path, title=title)
        return
    from ...core.plotting import make_figure
    from ...core.result import df_html

    sec = report_section(results)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>",
             f"<h1>{html.escape(title)}</h1><h2>{html.escape(sec.title)}</h2><p>{html.escape(sec.intro)}</p>"]
    for cap, df in sec.tables:
        parts.append(f"<h3>{html.escape(cap)}</h3>" + df_html(df))
    for r in results:
        for w in r.warnings:
            parts.append(f"<p><b>{html.escape(r.sample)}</b>: {html.escape(w)}</p>")
    for i, spec in enumerate(sec.plots):
        parts.append(make_figure(spec).to_html(full_html=False, include_plotlyjs=(i == 0)))
    parts.append(f"<script type='application/json' id='specproc-data'>"
                 f"{html.escape(json.dumps([r.to_dict() for r in results], allow_nan=False))}</script>")
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("".join(parts))
