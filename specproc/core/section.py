"""Report sections: what a technique contributes to the unified report.

A technique module exposes ``report_section(results) -> ReportSection``; the report renders
sections without knowing any technique's internals: its figures first, then its tables (a long
per-item table is collapsed and capped; the exports hold every row). :func:`default_section`
covers the common case (each result's main table and plots, plus one summary table).

``explain`` (optional): ``explain(result, quantity_name) -> str | None``, the technique's own
words on what a presence call rests on (e.g. matched fraction and its chance probability, a
detection limit), shown next to the check in the evidence table.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
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
    explain: Callable[[Any, str], str | None] | None = None   # what a presence call rests on


class MappedFigures(Sequence):
    """``fn(spec)`` of each plot spec of ``figures``, applied when a figure is read (a section that
    adjusts its processors' specs for the report without making figures it does not draw)."""

    def __init__(self, figures: Sequence, fn: Callable[[dict], dict]):
        self._figures, self._fn = figures, fn

    def __len__(self) -> int:
        return len(self._figures)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._fn(self._figures[i])


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
