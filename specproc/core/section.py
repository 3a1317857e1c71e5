"""Report sections: what a technique contributes to the unified report.

A technique module exposes ``report_section(results) -> ReportSection``; the report renders
sections without knowing any technique's internals. :func:`default_section` covers the
common case (each result's main table and plots, plus one summary table).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ReportSection:
    technique: str
    title: str
    intro: str = ""                                   # plain text (escaped by the report)
    tables: list[tuple[str, Any]] = field(default_factory=list)   # (caption, DataFrame)
    plots: Sequence = field(default_factory=list)     # plot specs (core.plotting): a list, or
                                                      # core.result.Figures (made when read)
    results: list[Any] = field(default_factory=list)


def default_section(technique: str, title: str, results: list, intro: str = "") -> ReportSection:
    import pandas as pd

    from .result import Figures

    tables = []
    frames = []
    for r in results:
        t = r.table
        if len(t):
            frames.append(t.assign(sample=r.sample, file=r.source) if "sample" not in t else t)
    if frames:
        tables.append((f"{title}: all results", pd.concat(frames, ignore_index=True)))
    return ReportSection(technique, title, intro, tables, Figures(results), list(results))
