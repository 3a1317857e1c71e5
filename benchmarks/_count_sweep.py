"""Scores of a random-truth sweep of an automatic mode (found versus true component counts), shared by
``bench_nmr_auto.py`` and ``bench_xps_auto.py`` (issue #23: right count where resolvable, never a confident
wrong count where not, split lines, and the "count uncertain" warnings given on right counts).

Each row of a sweep is a dict with ``n_true``, ``n_found``, ``resolvable``, ``right``, ``centres_ok``,
``uncertain_warning``, ``split`` and ``snr``.
"""
from __future__ import annotations

from collections import Counter

import numpy as np


def _mean(v):
    return float(np.mean(v)) if len(v) else None


def count_scores(rows: list, times) -> dict:
    """The scores every count sweep reports, with its time statistics and found-versus-true table."""
    res = [r for r in rows if r["resolvable"]]
    unres = [r for r in rows if not r["resolvable"]]
    times = np.asarray(times, float)
    table = Counter((r["n_true"], r["n_found"], r["resolvable"]) for r in rows)
    return {
        "n_spectra": len(rows), "n_resolvable": len(res),
        "resolvable_right_count": _mean([r["right"] for r in res]),
        "resolvable_centres_within_0.2_fwhm": _mean([r["centres_ok"] for r in res if r["right"]]),
        "n_unresolvable": len(unres),
        "unresolvable_right_or_warned": _mean([r["right"] or r["uncertain_warning"] for r in unres]),
        "unresolvable_confident_wrong": _mean([not r["right"] and not r["uncertain_warning"] for r in unres]),
        # false doubts: a "count uncertain" warning on a right count (resolution check, issue #23)
        "right_count_uncertain_warning": _mean([r["uncertain_warning"] for r in rows if r["right"]]),
        "resolvable_right_count_uncertain_warning": _mean([r["uncertain_warning"] for r in res if r["right"]]),
        "single_line_uncertain_warning": _mean([r["uncertain_warning"] for r in rows if r["n_true"] == 1 and r["right"]]),
        "single_line_snr200_uncertain_warning": _mean([r["uncertain_warning"] for r in rows
                                                       if r["n_true"] == 1 and r["right"] and r["snr"] >= 200]),
        "split_lines_per_true_line": float(sum(r["split"] for r in rows) / max(1, sum(r["n_true"] for r in rows))),
        "seconds_median": float(np.median(times)) if times.size else None,
        "seconds_p90": float(np.percentile(times, 90)) if times.size else None,
        "seconds_max": float(times.max()) if times.size else None,
        "count_table": [{"n_true": k[0], "n_found": k[1], "resolvable": k[2], "cases": v}
                        for k, v in sorted(table.items())],
    }


def count_table_markdown(summary: dict) -> str:
    """Found-versus-true rows (resolvable / not resolvable), the tables of docs/toolkit.md."""
    by: dict = {}
    for e in summary["count_table"]:
        by.setdefault(e["n_true"], {True: Counter(), False: Counter()})[e["resolvable"]][e["n_found"]] += e["cases"]
    out = ["| true | found (resolvable) | found (not resolvable) |", "|---|---|---|"]
    for n in sorted(by):
        cells = [", ".join(f"{k}: {v}" for k, v in sorted(by[n][r].items())) or "–" for r in (True, False)]
        out.append(f"| {n} | {cells[0]} | {cells[1]} |")
    return "\n".join(out)
