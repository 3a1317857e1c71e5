"""The unified HTML report: conclusions (one generated paragraph per question of the study), evidence
summary, one section per technique (figures, then tables), failures, provenance.

The report is a consumer (STYLE.md §6): it takes a neutral :class:`RunView` (results,
failures, claims, comparisons, provenance; a pipeline run gives one with ``RunSummary.view()``)
or a plain list of results, and renders :class:`~specproc.core.result.Result`
objects through each technique module's ``report_section(results)`` and claims from
:mod:`specproc.evidence`; it knows no technique's internals. The output is one
self-contained HTML file: plotly.js is embedded once (``plotly.offline.get_plotlyjs``,
gzip-compressed; the browser unpacks it), no CDN or network access is needed. Every string that
came from a file or the YAML is escaped.
"""
from .html import as_view, render_report, render_results, report_html
from .view import RunView

__all__ = ["RunView", "as_view", "render_report", "render_results", "report_html"]
