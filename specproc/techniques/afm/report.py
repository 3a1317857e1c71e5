"""The AFM report section: per-sample summary, modulus comparison of samples, maps, histograms."""
from __future__ import annotations

from ...core.result import Figures
from ...core.section import ReportSection

from ...plugins import get as _plugin

TITLE = _plugin("techniques", "afm").title  # the one definition: the Technique declared in __init__.py


def report_section(results) -> ReportSection:
    """Summary table (roughness, protrusions, modulus), pairwise modulus ratios, force-curve tables,
    and every result's plots (height / modulus maps with physical axes, histograms, a fitted curve)."""
    import pandas as pd

    results = [r for r in results if getattr(r, "technique", "") == "afm"]
    rows, curves = [], []
    for r in results:
        q = r.quantities

        def v(n):
            return q[n].value if n in q else None

        rows.append({"sample": r.sample, "file": _name(r.source), "kind": r.meta.get("kind"),
                     "Sa_m": v("roughness.Sa_m"), "Sq_m": v("roughness.Sq_m"), "Sz_m": v("roughness.Sz_m"),
                     "Ssk": v("roughness.Ssk"), "Sku": v("roughness.Sku"),
                     "protrusions": v("protrusions.count"), "protrusions_per_um2": v("protrusions.density_per_um2"),
                     "E_mean_GPa": None if v("modulus.mean_Pa") is None else v("modulus.mean_Pa") / 1e9,
                     "E_mean_stderr_GPa": (q["modulus.mean_Pa"].stderr / 1e9
                                           if "modulus.mean_Pa" in q and q["modulus.mean_Pa"].stderr is not None
                                           else None),
                     "E_median_GPa": None if v("modulus.median_Pa") is None else v("modulus.median_Pa") / 1e9,
                     "n_valid": v("modulus.n_valid"), "n_invalid": v("modulus.n_invalid"),
                     "warnings": len(r.warnings)})
        if r.meta.get("kind") == "force_map" and "curves" in r.tables:
            t = r.tables["curves"]
            curves.append(t.head(200).assign(sample=r.sample))
    tables = []
    if rows:
        df = pd.DataFrame(rows)
        tables.append(("AFM: per-sample summary", df.dropna(axis=1, how="all")))
    # modulus ratios, each sample against the first (reference first, as sp.afm.compare), through the
    # one comparison (evidence.pairwise -> evidence.compare)
    from ...evidence.compare import pairwise

    comp = [{"sample": c.sample, "reference": c.reference, "quantity": c.quantity, "ratio": c.value,
             "ratio_stderr": c.stderr, "sample_value": c.sample_value, "sample_stderr": c.sample_stderr,
             "reference_value": c.reference_value, "reference_stderr": c.reference_stderr}
            for c in pairwise(list(results), "modulus.mean_Pa", op="ratio")]
    if comp:
        tables.append(("AFM: modulus ratios (mean modulus of each sample / the first sample's, first-order "
                       "uncertainty)", pd.DataFrame(comp)))
    if curves:
        tables.append(("AFM: force curves (first 200 per map; every curve in the exports)",
                       pd.concat(curves, ignore_index=True)))
    warn_rows = [{"sample": r.sample, "file": _name(r.source), "warning": w} for r in results for w in r.warnings]
    if warn_rows:
        tables.append(("AFM: warnings", pd.DataFrame(warn_rows)))
    plots = Figures(results)
    intro = ("Height maps: spikes and scars replaced by the local median, robust plane (or 2nd-order "
             "polynomial) removed, scan lines aligned by their medians; roughness per ISO 25178 (Sa, Sq, Sz, "
             "Ssk, Sku) and ISO 4287 along lines (Ra, Rq). Protrusions: connected regions above median + "
             "5 robust SD and at least 4 pixels. Modulus maps: non-positive, absurd (> 1 TPa) and log-spike "
             "pixels masked; the error of the mean from block means. Force curves: linear baseline, "
             "threshold contact point, contact-mechanics model fitted with a free contact point by the "
             "batch engine; each curve carries a quality flag.")
    return ReportSection("afm", TITLE, intro, tables, plots, list(results))


def _name(path) -> str | None:
    """The file name of a source path (the provenance table has the full path)."""
    return None if path is None else str(path).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
