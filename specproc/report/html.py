"""HTML rendering of runs, results and claims (see :mod:`specproc.report`)."""
from __future__ import annotations

import copy
import html
import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.files import atomic_write_text, check_writable_target
from ..core.result import df_html, jsonable
from .view import RunView

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;
color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
.meta{color:#666;font-size:.9em}
table.specproc-table,table.claims,table.prov{border-collapse:collapse;font-size:.85em;margin:.6em 0;width:100%}
table.specproc-table td,table.specproc-table th,table.claims td,table.claims th,table.prov td,table.prov th{
border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
.verdict{font-weight:600;padding:2px 6px;border-radius:4px;white-space:nowrap}
.v-supported{background:#d4edda;color:#155724}.v-not-supported{background:#f8d7da;color:#721c24}
.v-inconclusive{background:#fff3cd;color:#856404}.v-no-data{background:#e2e3e5;color:#383d41}
.reason{color:#555;font-size:.9em}
code,.hash{font-family:ui-monospace,monospace;font-size:.85em;word-break:break-all}
.failure{color:#721c24}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
.figure{margin:1em 0}
"""

_VERDICT_CLASS = {"supported": "v-supported", "not supported": "v-not-supported",
                  "inconclusive": "v-inconclusive", "no data": "v-no-data"}


def esc(x: Any) -> str:
    """HTML-escape anything (quotes too: the value may land in an attribute)."""
    return html.escape("" if x is None else str(x), quote=True)


def _short_path(p: str) -> str:
    """File name for a link; Bruker-style ``.../<sample>/1`` folders keep their parent."""
    parts = [x for x in str(p).replace("\\", "/").split("/") if x]
    if not parts:
        return str(p)
    if len(parts) > 1 and (parts[-1].isdigit() or len(parts[-1]) <= 3):
        return "/".join(parts[-2:])
    return parts[-1]


def _anchor(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(s))


# --------------------------------------------------------------------------- figures
_TEXT_KEYS = ("title", "x_label", "y_label", "z_label")


def safe_spec(spec: dict) -> dict:
    """Copy of a plot spec whose labels are HTML-escaped.

    plotly.js renders a subset of HTML in titles and legend names; escaping makes text from
    files show literally (plotly converts the entities back for display) and never markup.
    """
    s = copy.copy(spec)
    for k in _TEXT_KEYS:
        if s.get(k) is not None:
            s[k] = esc(s[k])
    for listkey in ("series", "ticks"):
        if s.get(listkey):
            items = []
            for item in s[listkey]:
                item = dict(item)
                if item.get("name") is not None:
                    item["name"] = esc(item["name"])
                if item.get("labels") is not None:
                    item["labels"] = [esc(v) for v in item["labels"]]
                items.append(item)
            s[listkey] = items
    return s


#: Points kept per figure trace in the report (min/max decimation keeps every peak visible).
MAX_POINTS = 3000
#: Figures drawn per technique section at most. A batch of thousands of spectra would otherwise
#: make a report of hundreds of MB that no browser opens; beyond this an evenly spaced selection
#: (first and last included) is drawn and the section says so. Every result stays in the tables
#: and the exports.
MAX_FIGURES = 48


def _keep_indices(y, n_max: int):
    """Indices of the min and max of ``y`` in ``n_max // 2`` equal buckets (sorted, unique).

    Min/max decimation (as in oscilloscope displays) keeps every peak and dip of the signal,
    unlike striding; written here because it is a few lines of numpy. All buckets at once
    (``reduceat``, then the first position of each bucket's extreme), NaN never chosen while its
    bucket has a number; ~50x faster than a loop over the buckets.
    """
    import numpy as np

    y = np.asarray(y, float)
    n = y.size
    if n == 0:
        return np.zeros(0, int)
    nb = max(1, n_max // 2)
    edges = np.linspace(0, n, nb + 1).astype(int)
    starts = np.unique(edges[:-1][edges[:-1] < edges[1:]])
    bucket = np.repeat(np.arange(starts.size), np.diff(np.append(starts, n)))
    keep = [np.array([0, n - 1])]
    for src, reduce in ((np.where(np.isnan(y), np.inf, y), np.minimum),
                        (np.where(np.isnan(y), -np.inf, y), np.maximum)):
        hit = np.flatnonzero(src == reduce.reduceat(src, starts)[bucket])
        _, first = np.unique(bucket[hit], return_index=True)
        keep.append(hit[first])
    return np.unique(np.concatenate(keep))


def decimate_spec(spec: dict, n_max: int = MAX_POINTS) -> dict:
    """Copy of a ``spectrum``/``xy`` plot spec with long traces reduced to about ``n_max`` points.

    The indices come from the ``data`` series (else the first one) and are applied to every
    series sharing the spec's ``x``, so fits and components stay aligned with the data. Values
    are stored as float32: the report is for looking, the exports keep full precision.
    """
    import numpy as np

    x = spec.get("x")
    series = spec.get("series") or []
    if spec.get("kind", "spectrum") not in ("spectrum", "xy") or x is None or not series:
        return spec
    x = np.asarray(x)
    if x.ndim != 1 or x.size <= n_max or not np.issubdtype(x.dtype, np.number):
        return spec
    ref = next((sr for sr in series if sr.get("role") == "data" and "x" not in sr), series[0])
    y = np.asarray(ref["y"])
    if y.shape != x.shape or not np.issubdtype(y.dtype, np.number):
        return spec
    idx = _keep_indices(np.real(y), n_max)
    out = dict(spec, x=x[idx].astype(np.float32))
    new = []
    for sr in series:
        sy = np.asarray(sr.get("y"))
        if "x" not in sr and sy.shape == x.shape and np.issubdtype(sy.dtype, np.number):
            sr = dict(sr, y=np.real(sy)[idx].astype(np.float32))
        new.append(sr)
    out["series"] = new
    return out


def figure_div(spec: dict) -> str:
    """One plot spec as an HTML div (plotly.js not included; the page embeds it once).

    plotly's ``to_html`` serialises the figure JSON with ``<``, ``>`` and ``/`` escaped as
    ``\\u003c``..., so no string in a figure can close the surrounding ``<script>``
    (tests/report check this).
    """
    from ..core.plotting import make_figure, spectrum_figure_dict

    spec = safe_spec(decimate_spec(spec))
    if spec.get("kind", "spectrum") == "spectrum":  # the report's bulk: plain JSON, no graph_objects
        import plotly.io as pio

        fig = spectrum_figure_dict(spec)
        fig["data"] = [{k: _typed_array(v) for k, v in tr.items()} for tr in fig["data"]]
        return pio.to_html(fig, full_html=False, include_plotlyjs=False, config={"responsive": True}, validate=False)
    return make_figure(spec).to_html(full_html=False, include_plotlyjs=False, config={"responsive": True})


def _typed_array(v):
    """A float array as plotly.js's typed-array JSON (``{"dtype": "f4" | "f8", "bdata": base64}``, what
    plotly writes for a graph_objects figure; several times smaller than decimal numbers); else ``v``."""
    import numpy as np

    if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.ndim == 1 and v.size:
        import base64

        code = "f4" if v.dtype.itemsize == 4 else "f8"
        a = np.ascontiguousarray(v, "<" + code)
        return {"dtype": code, "bdata": base64.b64encode(a).decode("ascii")}
    return v


# --------------------------------------------------------------------------- sections
def _sections(results: list) -> list:
    """``ReportSection`` per technique present in ``results`` (technique plugin order first)."""
    from .. import plugins
    from ..core.section import default_section

    by_tech: dict[str, list] = {}
    for r in results:
        by_tech.setdefault(r.technique, []).append(r)
    try:
        mods = plugins.loaded("techniques")
    except Exception:  # a broken registry must not lose the report
        mods = {}
    order = [t for t in mods if t in by_tech] + [t for t in by_tech if t not in mods]
    out = []
    for tech in order:
        res = by_tech[tech]
        mod = mods.get(tech)
        title = getattr(mod, "TITLE", None) or tech.upper()
        section, note = None, ""
        fn = getattr(mod, "report_section", None)
        if fn is not None:
            try:
                section = fn(res)
            except Exception as exc:  # a technique's section bug: fall back to the generic one
                note = f"{tech} report_section failed ({type(exc).__name__}: {exc}); generic section shown."
        if section is None:
            section = default_section(tech, title, res)
        out.append((tech, section, note))
    return out


def _section_html(tech: str, section, note: str) -> str:
    parts = [f"<section id='sec-{_anchor(tech)}'><h2>{esc(section.title or tech)}</h2>"]
    if note:
        parts.append(f"<p class='failure'>{esc(note)}</p>")
    if section.intro:
        parts.append(f"<p>{esc(section.intro)}</p>")
    for caption, df in section.tables:
        parts.append(f"<div class='table'><p><b>{esc(caption)}</b></p>{df_html(df)}</div>")
    plots = section.plots  # a list, or figures made when read (core.result.Figures): pick, then read
    if len(plots) > MAX_FIGURES:
        import numpy as np

        keep = np.unique(np.linspace(0, len(plots) - 1, MAX_FIGURES).round().astype(int))
        parts.append(f"<p class='meta'>{len(keep)} of {len(plots)} figures shown (evenly spaced, first and "
                     "last included); every result is in the tables above and in the exports.</p>")
        plots = [plots[int(i)] for i in keep]
    else:
        plots = list(plots)
    for spec in plots:
        try:
            parts.append(f"<div class='figure'>{figure_div(spec)}</div>")
        except Exception as exc:  # one bad plot spec must not lose the report
            parts.append(f"<p class='failure'>figure {esc(spec.get('title'))} could not be drawn: "
                         f"{esc(type(exc).__name__)}: {esc(exc)}</p>")
    parts.append("</section>")
    return "".join(parts)


# --------------------------------------------------------------------------- claims
def _claims_html(claims: list, file_ids: dict, techs_with_section: set) -> str:
    if not claims:
        return ""
    rows = []
    for c in claims:
        cls = _VERDICT_CLASS.get(c.verdict, "v-no-data")
        links = []
        for t in c.techniques:
            if t in techs_with_section:
                links.append(f"<a href='#sec-{_anchor(t)}'>{esc(t)} section</a>")
        for s in c.sources:
            fid = file_ids.get(s)
            name = _short_path(s)
            if fid is not None:
                links.append(f"<a href='#file-{fid}' title='{esc(s)}'>{esc(name)}</a>")
            else:
                links.append(f"<span title='{esc(s)}'>{esc(name)}</span>")
        rows.append(
            f"<tr id='claim-{_anchor(c.id)}'><td><code>{esc(c.id)}</code></td><td>{esc(c.text)}</td>"
            f"<td>{esc(c.value_text())}</td><td>{esc(c.rule)}</td>"
            f"<td><span class='verdict {cls}'>{esc(c.verdict)}</span></td>"
            f"<td class='reason'>{esc(c.reason)}</td><td>{'<br>'.join(links)}</td></tr>")
    k = claims[0].coverage_factor
    return ("<section id='evidence'><h2>Evidence summary</h2>"
            f"<p class='meta'>Verdicts use value ± {k:g}σ (coverage factor k = {k:g}): <i>inconclusive</i> when "
            "that interval straddles the threshold; <i>no data</i> when a technique or sample has no results "
            "(or no processor is registered).</p>"
            "<table class='claims'><thead><tr><th>claim</th><th>statement</th><th>value ± uncertainty</th>"
            "<th>rule</th><th>verdict</th><th>details</th><th>evidence</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></section>")


def _comparisons_html(comparisons: list) -> str:
    """Comparisons declared without a rule (pipeline ``comparisons:``): value ± uncertainty."""
    if not comparisons:
        return ""
    rows = []
    for cid, c in comparisons:
        sel = getattr(c, "selector", None) or {}
        what = c.quantity + "".join(f" [{k}={v}]" for k, v in (sel.get("meta") or {}).items())
        pair = c.sample + (f" vs {c.reference}" if c.reference else "")
        if c.value is None:
            val = "—"
        elif c.stderr is None:
            val = f"{c.value:.4g} {c.unit}"
        else:
            val = f"{c.value:.4g} ± {c.stderr:.2g} {c.unit}"
        rows.append(f"<tr id='comparison-{_anchor(cid)}'><td><code>{esc(cid)}</code></td><td>{esc(c.technique)}</td>"
                    f"<td>{esc(what)}</td><td>{esc(c.op)}</td><td>{esc(pair)}</td><td>{esc(val.strip())}</td>"
                    f"<td class='reason'>{esc(c.reason)}</td></tr>")
    return ("<section id='comparisons'><h2>Comparisons</h2><table class='claims'><thead><tr><th>id</th>"
            "<th>technique</th><th>quantity</th><th>op</th><th>samples</th><th>value ± uncertainty</th>"
            "<th>details</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>")


# --------------------------------------------------------------------------- failures, provenance
def _failures_html(failures: list[dict], skipped: list[dict]) -> str:
    parts = ["<section id='failures'><h2>Failures</h2>"]
    if not failures and not skipped:
        parts.append("<p>None: every input was processed.</p>")
    if failures:
        parts.append("<table class='prov'><tr><th>sample</th><th>technique</th><th>processor</th><th>file</th>"
                     "<th>error</th></tr>")
        for f in failures:
            parts.append(f"<tr class='failure'><td>{esc(f.get('sample'))}</td><td>{esc(f.get('technique'))}</td>"
                         f"<td>{esc(f.get('processor'))}</td><td><code>{esc(f.get('file'))}</code></td>"
                         f"<td>{esc(f.get('type'))}: {esc(f.get('error'))}</td></tr>")
        parts.append("</table>")
    if skipped:
        parts.append("<p><b>Skipped pipeline entries</b></p><table class='prov'><tr><th>sample</th>"
                     "<th>technique</th><th>processor</th><th>files</th><th>reason</th></tr>")
        for s in skipped:
            line = f" (line {s.get('line')})" if s.get("line") else ""
            parts.append(f"<tr><td>{esc(s.get('sample'))}</td><td>{esc(s.get('technique'))}</td>"
                         f"<td>{esc(s.get('processor'))}</td><td><code>{esc(s.get('files'))}</code></td>"
                         f"<td>{esc(s.get('reason'))}{esc(line)}</td></tr>")
        parts.append("</table>")
    parts.append("</section>")
    return "".join(parts)


def _provenance_html(inputs: list[dict], software: dict, run_info: dict) -> str:
    parts = ["<section id='provenance'><h2>Provenance</h2>"]
    if run_info:
        parts.append("<table class='prov'>" + "".join(
            f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in run_info.items() if v is not None)
            + "</table>")
    parts.append("<p><b>Inputs</b></p><table class='prov'><tr><th>#</th><th>sample</th><th>technique</th>"
                 "<th>file</th><th>sha256</th><th>reader</th><th>processor</th><th>parameters</th>"
                 "<th>status</th></tr>")
    for i, d in enumerate(inputs):
        params = json.dumps(jsonable(d.get("params") or {}), sort_keys=True)
        parts.append(f"<tr id='file-{i}'><td>{i}</td><td>{esc(d.get('sample'))}</td><td>{esc(d.get('technique'))}</td>"
                     f"<td><code>{esc(d.get('file'))}</code></td><td class='hash'>{esc(d.get('sha256'))}</td>"
                     f"<td>{esc(d.get('reader'))}</td><td>{esc(d.get('processor'))}</td>"
                     f"<td><code>{esc(params)}</code></td><td>{esc(d.get('status'))}</td></tr>")
    parts.append("</table><p><b>Software</b></p><table class='prov'>" + "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in software.items()) + "</table></section>")
    return "".join(parts)


# --------------------------------------------------------------------------- assembling
def as_view(run_or_results, claims: list | None = None, title: str | None = None) -> RunView:
    """A :class:`RunView` from a view or a list of results / errors (claims and title override)."""
    if isinstance(run_or_results, RunView):
        view = run_or_results
        if claims is not None or title is not None:
            view = replace(view, claims=list(claims) if claims is not None else view.claims,
                           title=title if title is not None else view.title)
        return view
    if isinstance(run_or_results, (list, tuple)) or run_or_results is None:
        return RunView.from_results(list(run_or_results or []), claims, title or "specproc report")
    raise TypeError(f"render_report needs a RunView or a list of results, not {type(run_or_results).__name__} "
                    "(a pipeline run gives one with RunSummary.view())")


def report_html(run_or_results, claims: list | None = None, title: str | None = None) -> str:
    """The report as one HTML string (see :func:`render_report`)."""
    from plotly.offline import get_plotlyjs

    view = as_view(run_or_results, claims, title)
    title, claims = view.title, list(view.claims)
    sections = _sections(view.results)
    file_ids = {d.get("file"): i for i, d in enumerate(view.inputs)}
    body = [f"<h1>{esc(title)}</h1>",
            "<p class='meta'>" + " · ".join(f"{esc(k)}: {esc(v)}" for k, v in view.info.items()
                                            if k in ("run id", "finished", "generated", "files", "results"))
            + "</p>",
            "<nav><a href='#evidence'>evidence</a> · " + " · ".join(
                f"<a href='#sec-{_anchor(t)}'>{esc(s.title or t)}</a>" for t, s, _ in sections)
            + " · <a href='#failures'>failures</a> · <a href='#provenance'>provenance</a></nav>",
            _claims_html(claims, file_ids, {t for t, _, _ in sections}),
            _comparisons_html(view.comparisons)]
    body += [_section_html(t, s, n) for t, s, n in sections]
    body.append(_failures_html(view.failures, view.skipped))
    body.append(_provenance_html(view.inputs, view.software, view.info))
    plotlyjs = get_plotlyjs() if any(s.plots for _, s, _ in sections) else ""
    head = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style>"
            + (f"<script type='text/javascript'>{plotlyjs}</script>" if plotlyjs else "") + "</head><body>")
    return head + "\n".join(body) + "</body></html>"


def render_report(run_or_results, claims: list | None = None, path: str | Path = "report.html",
                  title: str | None = None) -> Path:
    """Write the unified report.

    Parameters
    ----------
    run_or_results : RunView or list of Result
        A run view (a pipeline run gives one with ``RunSummary.view()``) or plain results
        (exceptions and ``{"file", "error"}`` dicts in the list are shown as failures).
    claims : list of ClaimOutcome, optional
        Evaluated claims for the evidence summary at the top (default: the view's).
    path : str or Path
        Output HTML file (written atomically: a failed write leaves no partial file).
    title : str, optional

    Returns
    -------
    Path

    Raises
    ------
    SpecprocError
        ``path: cannot write report: <reason>`` when the path is a directory, the folder is
        read-only or missing, or the disk is full — never a traceback.
    """
    from ..core.errors import SpecprocError

    path = Path(path)
    if path.is_dir():
        raise SpecprocError("cannot write report: this is a directory; give a file name such as report.html",
                            str(path))
    try:  # before rendering: a device or FIFO is refused at once, not after the report is built
        check_writable_target(path)
    except OSError as exc:
        raise SpecprocError(f"cannot write report: {exc.strerror or exc}", str(path)) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # broken plugins already warned at discovery
        text = report_html(run_or_results, claims, title)
    try:
        return atomic_write_text(path, text)
    except OSError as exc:
        raise SpecprocError(f"cannot write report: {exc.strerror or exc}", str(path)) from None


def render_results(results: list, path: str | Path, title: str = "specproc results",
                   failures: list[dict] | None = None) -> Path:
    """Report of plain results (the technique CLIs' ``--report``): sections, failures, provenance.

    ``failures``: ``[{"file", "error"}]`` of the inputs that could not be processed (listed in
    the report's failure table; a report is written even when every input failed).
    """
    from ..core.errors import SpecprocError

    errs = [SpecprocError(str(f.get("error")), f.get("file")) for f in (failures or [])]
    return render_report(list(results) + errs, [], path, title)
