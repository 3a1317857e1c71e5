"""HTML rendering of runs, results and claims (see :mod:`specproc.report`).

Layout of a report: title, conclusions (one generated paragraph per question the pipeline
declares), evidence summary (every claim, each check of a multi-check claim named, with what a
presence decision rests on), comparisons, one section per technique (its figures first, then its
tables; long per-item tables collapsed and capped, wide tables scrolling inside their own box),
failures and provenance.

Size: plotly.js is embedded once, gzip-compressed (base64; the page unpacks it with the
browser's ``DecompressionStream``), and each figure is compact plain JSON: numeric arrays as
16-bit codes over their range, one shared x axis per spectrum, components only where they differ
from their floor, histograms as counts, no per-figure copy of the plotly template. A figure is
drawn when it comes near the viewport (the others then one by one in the background). Every
string from a file or the YAML is escaped.
"""
from __future__ import annotations

import base64
import copy
import functools
import gzip
import html
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.files import atomic_write_text, check_writable_target
from ..core.result import df_html, jsonable
from ..evidence.compare import fmt_pm
from .view import RunView

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1320px;padding:1em 2em;
color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.1em;margin:.2em 0 .4em}
.meta{color:#666;font-size:.9em}
.scroll{overflow-x:auto;max-width:100%}
table.specproc-table,table.claims,table.prov{border-collapse:collapse;font-size:.85em;margin:.3em 0}
table.claims,table.prov{width:100%}
table.specproc-table td,table.specproc-table th,table.claims td,table.claims th,table.prov td,table.prov th{
border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
table.specproc-table td{max-width:40em}
th{background:#f4f4f4}
.verdict{font-weight:600;padding:1px 6px;border-radius:4px;white-space:nowrap;font-size:.9em}
.v-supported{background:#d4edda;color:#155724}.v-not-supported{background:#f8d7da;color:#721c24}
.v-inconclusive{background:#fff3cd;color:#856404}.v-no-data{background:#e2e3e5;color:#383d41}
.reason{color:#555;font-size:.9em}
code,.hash{font-family:ui-monospace,monospace;font-size:.85em;word-break:break-all}
td.cid code{word-break:normal;white-space:nowrap}
.failure{color:#721c24}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:6px 14px;margin:.6em 0}
.figure{min-width:0;border:1px solid #eee;border-radius:4px}
.figfail{color:#721c24;padding:1em;font-size:.9em}
.table{margin:.8em 0} details.table>summary{cursor:pointer;margin:.3em 0}
details.table[open]>summary{margin-bottom:.4em}
tr.check td{background:#fbfbfb;font-size:.95em} tr.check td.cid{border-top:none}
.question{border:1px solid #ddd;border-left:5px solid #888;border-radius:4px;padding:.6em 1em;margin:.8em 0}
.question.q-supported{border-left-color:#28a745}.question.q-contradicted{border-left-color:#dc3545}
.question.q-mixed,.question.q-open{border-left-color:#e0a800}
.question ul{margin:.2em 0 .4em;padding-left:1.3em} .question li{margin:.15em 0}
.stance{font-weight:600;margin-right:.3em}
.glance{font-size:.95em;margin:.3em 0}
"""

_VERDICT_CLASS = {"supported": "v-supported", "not supported": "v-not-supported",
                  "inconclusive": "v-inconclusive", "no data": "v-no-data"}
#: a question's stance -> badge class
_STANCE_CLASS = {"supported": "v-supported", "mostly supported": "v-supported", "contradicted": "v-not-supported",
                 "mostly contradicted": "v-not-supported", "mixed": "v-inconclusive", "open": "v-inconclusive"}
#: a table of more rows than this is collapsed (a click shows it)
COLLAPSE_ROWS = 15
#: rows of one table written into the page at most (the exports keep every row)
MAX_TABLE_ROWS = 200


def _badge(verdict: str) -> str:
    return f"<span class='verdict {_VERDICT_CLASS.get(verdict, 'v-no-data')}'>{esc(verdict)}</span>"


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
    """One plot spec as plotly's own HTML div (plotly.js not included); the report embeds the more
    compact :func:`figure_doc` instead.

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


# --------------------------------------------------------------------------- compact figures for the page
#: codes of a packed array: 0..65534 over its finite range; 65535 is NaN / inf
_NAN_CODE = 65535


def _pack(a) -> dict:
    """A numeric array as 16-bit codes over its range: ``{"q": 2, "lo", "sc", "bdata"[, "shape"]}``,
    value = lo + code × sc (the page's loader unpacks it to a Float32Array). Whole numbers within a
    range of 65,534 (counts) are exact; anything else is within 1/131,068 of the array's range of its
    value — far below a pixel: the report is for looking, the exports keep full precision."""
    import numpy as np

    a = np.asarray(a, float)
    fin = np.isfinite(a)
    lo = hi = 0.0
    if fin.any():
        lo, hi = float(a[fin].min()), float(a[fin].max())
    whole = fin.any() and hi - lo <= _NAN_CODE - 1 and bool(np.all(a[fin] == np.round(a[fin])))
    sc = 1.0 if whole else ((hi - lo) / (_NAN_CODE - 1) if hi > lo else 0.0)
    codes = np.full(a.shape, _NAN_CODE, dtype="<u2")
    codes[fin] = np.round((a[fin] - lo) / sc) if sc > 0 else 0
    out = {"q": 2, "lo": lo, "sc": sc, "bdata": base64.b64encode(codes.tobytes()).decode("ascii")}
    if a.ndim > 1:
        out["shape"] = list(a.shape)
    return out


def _slice_of(v, base) -> tuple[int, int] | None:
    """``(i0, i1)`` when array ``v`` is the view ``base[i0:i1]`` (shared x of a spectrum), else None."""
    import numpy as np

    if v is base:
        return 0, len(base)
    if not (isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype == base.dtype and v.size
            and np.shares_memory(v, base) and v.strides == base.strides):
        return None
    off, rem = divmod(v.__array_interface__["data"][0] - base.__array_interface__["data"][0], base.itemsize)
    if rem or off < 0 or off + v.size > base.size:
        return None
    return int(off), int(off + v.size)


def _enc(v):
    """Plain JSON of a figure value: numeric arrays packed (:func:`_pack`), NaN/inf as null."""
    import numpy as np

    if isinstance(v, dict):
        return {k: _enc(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        if len(v) > 16 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            return _pack(v)
        return [_enc(x) for x in v]
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "fiu" and v.size > 16 and v.ndim <= 2:
            return _pack(v)
        return jsonable(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return jsonable(v) if not isinstance(v, (str, int, bool)) and v is not None else v


def _script_json(doc) -> str:
    """JSON for a ``<script type=application/json>``: ``<`` and ``>`` escaped so no string can close
    the element or open a comment (what plotly's own ``to_html`` does)."""
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e")


def figure_doc(spec: dict) -> dict:
    """The page's JSON of one plot spec: ``{"data", "layout", "xs"}`` (plotly figure JSON without
    the template; spectrum traces refer to the shared x, ``{"xs": 0, "i0", "i1"}``, unpacked by the
    page's loader). Decimated (:func:`decimate_spec`), labels escaped (:func:`safe_spec`)."""
    import numpy as np

    from ..core.plotting import histogram_figure_dict, make_figure, spectrum_figure_dict

    spec = safe_spec(decimate_spec(spec))
    kind = spec.get("kind", "spectrum")
    shared = None
    if kind == "spectrum":
        shared = np.asarray(spec["x"])
        if shared.dtype.kind == "f" and shared.dtype != np.float32:
            shared = shared.astype(np.float32)
        fig = spectrum_figure_dict(dict(spec, x=shared), compact=True)
    elif kind == "histogram":
        fig = histogram_figure_dict(spec)
    else:
        fig = make_figure(spec).to_plotly_json()
    layout = {k: v for k, v in fig["layout"].items() if k != "template"}
    data, xs = [], []
    for tr in fig["data"]:
        out = {}
        for k, v in tr.items():
            ref = _slice_of(v, shared) if k == "x" and shared is not None and shared.ndim == 1 else None
            if ref is not None:
                if not xs:
                    xs.append(_pack(shared))
                out[k] = {"xs": 0} if ref == (0, shared.size) else {"xs": 0, "i0": ref[0], "i1": ref[1]}
            else:
                out[k] = _enc(v)
        data.append(out)
    doc = {"data": data, "layout": _enc(layout)}
    if xs:
        doc["xs"] = xs
    return doc


def _figure_html(spec: dict, n: int) -> str:
    """A figure's placeholder (its height reserved) and its JSON, drawn by the page's loader."""
    doc = figure_doc(spec)
    h = doc["layout"].get("height") or 420
    return (f"<div class='figure'><div id='fig-{n}' class='plot' style='height:{int(h)}px'></div>"
            f"<script type='application/json' class='spfig' data-target='fig-{n}'>{_script_json(doc)}</script></div>")


@functools.lru_cache(maxsize=1)
def _plotlyjs_gz() -> str:
    """plotly.js (the installed plotly's bundle), gzip-compressed and base64-encoded: ~2 MB instead of 4.8."""
    from plotly.offline import get_plotlyjs

    return base64.b64encode(gzip.compress(get_plotlyjs().encode("utf-8"), 9, mtime=0)).decode("ascii")


#: unpacks plotly.js (DecompressionStream), then draws each figure when it nears the viewport and
#: the others one by one in the background; a figure that cannot be drawn says why in its place
_LOADER = r"""
(function(){"use strict";
var figs=Array.prototype.slice.call(document.querySelectorAll("script.spfig"));if(!figs.length)return;
function bytes(s){var b=atob(s),n=b.length,u=new Uint8Array(n);for(var i=0;i<n;i++)u[i]=b.charCodeAt(i);return u;}
function unpack(o){if(o===null||typeof o!=="object"||ArrayBuffer.isView(o))return o;
 if(Array.isArray(o)){for(var i=0;i<o.length;i++)o[i]=unpack(o[i]);return o;}
 if(o.q===2&&typeof o.bdata==="string"){var c=new Uint16Array(bytes(o.bdata).buffer),n=c.length,v=new Float32Array(n);
  for(var j=0;j<n;j++)v[j]=c[j]===65535?NaN:o.lo+c[j]*o.sc;
  if(o.shape){var rows=[],w=o.shape[1];for(var r=0;r<o.shape[0];r++)rows.push(Array.from(v.subarray(r*w,(r+1)*w)));return rows;}
  return v;}
 for(var k in o)if(Object.prototype.hasOwnProperty.call(o,k))o[k]=unpack(o[k]);return o;}
function target(el){return document.getElementById(el.getAttribute("data-target"));}
function say(div,msg){if(div){div.className+=" figfail";div.style.height="auto";div.textContent=msg;}}
var template=null;
function render(el){if(!el||el._done)return;el._done=true;var div=target(el);
 try{var f=JSON.parse(el.textContent);var xs=(f.xs||[]).map(unpack);
  f.data.forEach(function(t){if(t.x&&t.x.xs!==undefined){var a=xs[t.x.xs];
   t.x=a.subarray(t.x.i0||0,t.x.i1===undefined?a.length:t.x.i1);}});
  unpack(f.data);unpack(f.layout);
  f.layout.template=template;
  Plotly.newPlot(div,f.data,f.layout,{responsive:true,displaylogo:false});
 }catch(e){say(div,"figure could not be drawn: "+e);}}
function start(){template=JSON.parse(document.getElementById("plotly-template").textContent);
 if("IntersectionObserver" in window){var by=new Map();figs.forEach(function(el){by.set(target(el),el);});
  var io=new IntersectionObserver(function(es){es.forEach(function(e){if(e.isIntersecting){io.unobserve(e.target);
   render(by.get(e.target));}});},{rootMargin:"1200px 0px"});by.forEach(function(el,div){io.observe(div);});}
 var i=0;(function next(){while(i<figs.length&&figs[i]._done)i++;if(i<figs.length){render(figs[i]);setTimeout(next,15);}})();}
function fail(msg){figs.forEach(function(el){say(target(el),msg);});}
if(!window.DecompressionStream||!window.Blob||!Blob.prototype.stream){
 fail("This browser cannot unpack the embedded plotting library (it needs DecompressionStream: Chrome or Edge 80+, "
  +"Firefox 113+, Safari 16.4+). The numbers are in the tables and the exports.");return;}
var st=new Blob([bytes(document.getElementById("plotlyjs-gz").textContent)]).stream()
 .pipeThrough(new DecompressionStream("gzip"));
new Response(st).text().then(function(src){var s=document.createElement("script");s.textContent=src;
 document.head.appendChild(s);if(!window.Plotly)throw new Error("plotly.js did not load");start();})
 .catch(function(e){fail("The embedded plotting library could not be unpacked: "+e);});
})();
"""


#: a link into a collapsed table (a claim's input file in the provenance) opens it
_OPEN_TARGET = r"""
(function(){function open(){var id=decodeURIComponent(location.hash.slice(1));var el=id&&document.getElementById(id);
 if(!el)return;for(var p=el.parentElement;p;p=p.parentElement)if(p.tagName==="DETAILS")p.open=true;el.scrollIntoView();}
window.addEventListener("hashchange",open);open();})();
"""


def _plotly_assets() -> str:
    """The compressed plotly.js, the shared template and the loader (once per page, at its end)."""
    from ..core.plotting import plotly_template

    return (f"<script type='application/octet-stream' id='plotlyjs-gz'>{_plotlyjs_gz()}</script>"
            f"<script type='application/json' id='plotly-template'>{_script_json(jsonable(plotly_template()))}</script>"
            f"<script type='text/javascript'>{_LOADER}</script>")


# --------------------------------------------------------------------------- sections
def _sections(results: list) -> list:
    """``ReportSection`` per technique present in ``results`` (technique plugin order first)."""
    from .. import plugins
    from ..core.section import default_section

    by_tech: dict[str, list] = {}
    for r in results:
        by_tech.setdefault(r.technique, []).append(r)
    # each technique loaded here, not with plugins.loaded (which warns per broken plugin, and
    # silencing that with warnings.catch_warnings is not thread-safe): a broken one gets the
    # generic section with a note saying why
    techs: dict = {}   # name -> Technique
    broken: dict[str, str] = {}
    try:
        infos = plugins.available("techniques")
    except Exception:  # a broken registry must not lose the report
        infos = {}
    for name, info in infos.items():
        try:
            techs[name] = info.load()
        except Exception as exc:
            broken[name] = str(exc)
    order = [t for t in techs if t in by_tech] + [t for t in by_tech if t not in techs]
    out = []
    for tech in order:
        res = by_tech[tech]
        technique = techs.get(tech)
        title = technique.title if technique is not None else tech.upper()
        section, note = None, (f"{tech} technique plugin unavailable ({broken[tech]}); generic section shown."
                               if tech in broken else "")
        if technique is not None and technique.report_section is not None:
            try:
                section = technique.report_section(res)
            except Exception as exc:  # a technique's section bug: fall back to the generic one
                note = f"{tech} report_section failed ({type(exc).__name__}: {exc}); generic section shown."
        if section is None:
            section = default_section(tech, title, res)
        out.append((tech, section, note))
    return out


# --------------------------------------------------------------------------- tables
def _table_html(caption: str, df, collapse_rows: int = COLLAPSE_ROWS, max_rows: int = MAX_TABLE_ROWS) -> str:
    """A captioned table in its own horizontal scroll box; collapsed (click to show) above
    ``collapse_rows`` rows, and at most ``max_rows`` rows written (the exports have them all)."""
    n = len(df)
    shown = df.head(max_rows) if n > max_rows else df
    obj = [c for c in shown.columns if shown[c].dtype == object]
    if obj:  # None in a text column reads "—", like a missing number
        import numpy as np

        shown = shown.assign(**{str(c): shown[c].where(shown[c].notna(), np.nan) for c in obj}) \
            if all(isinstance(c, str) for c in obj) else shown
    note = (f"<p class='meta'>first {max_rows} of {n} rows shown; every row is in the exports "
            "(<code>exports/data/</code> of a pipeline run, <code>sp.export(results, folder)</code>).</p>"
            if n > max_rows else "")
    body = f"<div class='scroll'>{df_html(shown)}</div>{note}"
    if n > collapse_rows:
        return (f"<details class='table'><summary><b>{esc(caption)}</b> <span class='meta'>— {n} rows "
                f"(click to show)</span></summary>{body}</details>")
    return f"<div class='table'><p><b>{esc(caption)}</b></p>{body}</div>"


def _section_html(tech: str, section, note: str, counter: list[int]) -> str:
    """A technique's section: intro, its figures, then its tables (long ones collapsed)."""
    parts = [f"<section id='sec-{_anchor(tech)}'><h2>{esc(section.title or tech)}</h2>"]
    if note:
        parts.append(f"<p class='failure'>{esc(note)}</p>")
    if section.intro:
        parts.append(f"<p>{esc(section.intro)}</p>")
    plots = section.plots  # a list, or figures made when read (core.result.Figures): pick, then read
    if len(plots) > MAX_FIGURES:
        import numpy as np

        keep = np.unique(np.linspace(0, len(plots) - 1, MAX_FIGURES).round().astype(int))
        parts.append(f"<p class='meta'>{len(keep)} of {len(plots)} figures shown (evenly spaced, first and "
                     "last included); every result is in the tables below and in the exports.</p>")
        plots = [plots[int(i)] for i in keep]
    else:
        plots = list(plots)
    if plots:
        parts.append("<div class='figs'>")
        for spec in plots:
            try:
                counter[0] += 1
                parts.append(_figure_html(spec, counter[0]))
            except Exception as exc:  # one bad plot spec must not lose the report
                parts.append(f"<p class='failure'>figure {esc(spec.get('title'))} could not be drawn: "
                             f"{esc(type(exc).__name__)}: {esc(exc)}</p>")
        parts.append("</div>")
    for caption, df in section.tables:
        parts.append(_table_html(caption, df))
    parts.append("</section>")
    return "".join(parts)


# --------------------------------------------------------------------------- conclusions
def _conclusions_html(conclusions: list) -> str:
    """One box per question: its stance, the generated summary, the claims for / against / open with
    their values ± kσ and verdicts (each linked to its row of the evidence table)."""
    if not conclusions:
        return ""
    out = ["<section id='conclusions'><h2>Conclusions</h2><p class='meta'>Generated from the claims each question "
           "of the pipeline draws on; a claim counts <i>for</i> the answer when its verdict supports it and "
           "<i>against</i> when it refutes it. Values are ± 2σ unless stated: the interval each verdict is "
           "decided on.</p>"]
    for c in conclusions:
        stance = c.stance
        qcls = {"supported": "q-supported", "mostly supported": "q-supported", "contradicted": "q-contradicted",
                "mostly contradicted": "q-contradicted"}.get(stance, "q-mixed" if stance == "mixed" else "q-open")
        out.append(f"<div class='question {qcls}' id='q-{_anchor(c.id)}'><h3>{esc(c.text)} "
                   f"<span class='verdict {_STANCE_CLASS.get(stance, 'v-no-data')}'>{esc(stance)}</span></h3>"
                   f"<p class='glance'>{esc(c.summary())}</p>")
        for st, label in (("for", "For"), ("against", "Against"), ("open", "Inconclusive"), ("no data", "No data")):
            items = c.by_stance(st)
            if not items:
                continue
            lis = []
            for it in items:
                val = it.value if it.value and it.value != "—" else ""
                rule = f"rule {it.rule}" if it.rule and "; " not in it.rule else ""
                detail = "; ".join(x for x in (val, rule) if x)
                role = " <span class='meta'>(listed against)</span>" if it.role == "against" else ""
                lis.append(f"<li>{_badge(it.verdict)} <a href='#claim-{_anchor(it.claim_id)}'>{esc(it.text)}</a>"
                           f"{role}{' — ' + esc(detail) if detail else ''}</li>")
            out.append(f"<div><span class='stance'>{label}:</span><ul>{''.join(lis)}</ul></div>")
        out.append("</div>")
    out.append("</section>")
    return "".join(out)


# --------------------------------------------------------------------------- claims
def _explain(check, results: list, explainers: dict) -> str:
    """A technique's own words on what a presence call rests on (its section's ``explain``)."""
    fn = explainers.get(check.comparison.technique)
    if fn is None or not check.is_presence:
        return ""
    from ..evidence import QuantityRef

    c = check.comparison
    try:
        ref = QuantityRef(technique=c.technique, name=c.quantity, **(c.selector or {}))
        texts = [fn(r, c.quantity) for r in results if ref.matches(r) and str(r.sample) == str(c.sample)]
    except Exception:  # an explainer's bug must not lose the report
        return ""
    return "; ".join(dict.fromkeys(t for t in texts if t))


def _links(c, file_ids: dict, techs_with_section: set) -> str:
    links = [f"<a href='#sec-{_anchor(t)}'>{esc(t)} section</a>" for t in c.techniques if t in techs_with_section]
    for s in c.sources:
        fid = file_ids.get(s)
        name = _short_path(s)
        links.append(f"<a href='#file-{fid}' title='{esc(s)}'>{esc(name)}</a>" if fid is not None
                     else f"<span title='{esc(s)}'>{esc(name)}</span>")
    return "<br>".join(links)


def _claims_html(claims: list, file_ids: dict, techs_with_section: set, results: list = (),
                 explainers: dict | None = None) -> str:
    if not claims:
        return ""
    from collections import Counter

    explainers = explainers or {}
    k = claims[0].coverage_factor
    rows = []
    for c in claims:
        links = _links(c, file_ids, techs_with_section)
        multi = len(c.checks) > 1 or (c.checks and c.checks[0].is_presence)
        if not multi:
            rows.append(f"<tr id='claim-{_anchor(c.id)}'><td class='cid'><code>{esc(c.id)}</code></td>"
                        f"<td>{esc(c.text)}</td><td>{esc(c.interval_text())}</td><td>{esc(c.rule)}</td>"
                        f"<td>{_badge(c.verdict)}</td><td class='reason'>{esc(c.reason)}</td><td>{links}</td></tr>")
            continue
        n = Counter(ch.verdict for ch in c.checks)
        summary = f"{len(c.checks)} check{'s' if len(c.checks) > 1 else ''}: " + ", ".join(
            f"{v} {verdict}" for verdict, v in n.items())
        rows.append(f"<tr id='claim-{_anchor(c.id)}'><td class='cid'><code>{esc(c.id)}</code></td>"
                    f"<td>{esc(c.text)}</td><td>{esc(summary)}</td><td>all checks hold</td>"
                    f"<td>{_badge(c.verdict)}</td><td class='reason'></td><td>{links}</td></tr>")
        for ch in c.checks:
            why = ch.reason
            if ch.is_presence and ch.verdict != "no data":
                # the technique's own account of the call (its section's explain), else the generic one
                rests = _explain(ch, results, explainers) or ch.basis
                notes = [ch.comparison.reason] if "taken as absent" in (ch.comparison.reason or "") else []
                if rests:
                    notes.append(f"rests on: {rests}")
                why = "; ".join(notes) or ch.reason
            rows.append(f"<tr class='check'><td class='cid'></td><td>↳ {esc(ch.label())}</td>"
                        f"<td>{esc(ch.measured(k))}</td><td>{esc(ch.rule)}</td><td>{_badge(ch.verdict)}</td>"
                        f"<td class='reason'>{esc(why)}</td><td></td></tr>")
    counts = Counter(c.verdict for c in claims)
    glance = ", ".join(f"{n} {_badge(v)}" for v, n in sorted(counts.items(), key=lambda kv: kv[0] != "supported"))
    return ("<section id='evidence'><h2>Evidence summary</h2>"
            f"<p class='glance'>{len(claims)} claim{'s' if len(claims) != 1 else ''}: {glance}</p>"
            f"<p class='meta'>Verdicts use value ± {k:g}σ (coverage factor k = {k:g}; the values below are that "
            "interval): <i>inconclusive</i> when it straddles the threshold; <i>no data</i> when a technique or "
            "sample has no results (or no processor is registered). A claim of several checks holds when every "
            "check does; presence checks name the phase or species and say what the call rests on.</p>"
            "<div class='scroll'><table class='claims'><thead><tr><th>claim</th><th>statement</th>"
            f"<th>value ± {k:g}σ</th><th>rule</th><th>verdict</th><th>details</th><th>evidence</th></tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table></div></section>")


def _comparisons_html(comparisons: list) -> str:
    """Comparisons declared without a rule (pipeline ``comparisons:``): value ± uncertainty."""
    if not comparisons:
        return ""
    rows = []
    for cid, c in comparisons:
        sel = getattr(c, "selector", None) or {}
        what = c.quantity + "".join(f" [{k}={v}]" for k, v in (sel.get("meta") or {}).items())
        pair = c.sample + (f" vs {c.reference}" if c.reference else "")
        val = fmt_pm(c.value, c.stderr, c.unit)
        rows.append(f"<tr id='comparison-{_anchor(cid)}'><td><code>{esc(cid)}</code></td><td>{esc(c.technique)}</td>"
                    f"<td>{esc(what)}</td><td>{esc(c.op)}</td><td>{esc(pair)}</td><td>{esc(val.strip())}</td>"
                    f"<td class='reason'>{esc(c.reason)}</td></tr>")
    return ("<section id='comparisons'><h2>Comparisons</h2><div class='scroll'><table class='claims'><thead><tr>"
            "<th>id</th><th>technique</th><th>quantity</th><th>op</th><th>samples</th><th>value ± uncertainty</th>"
            "<th>details</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div></section>")


# --------------------------------------------------------------------------- failures, provenance
def _failures_html(failures: list[dict], skipped: list[dict]) -> str:
    parts = ["<section id='failures'><h2>Failures</h2>"]
    if not failures and not skipped:
        parts.append("<p>None: every input was processed.</p>")
    if failures:
        parts.append("<div class='scroll'><table class='prov'><tr><th>sample</th><th>technique</th><th>processor</th>"
                     "<th>file</th><th>error</th></tr>")
        for f in failures:
            parts.append(f"<tr class='failure'><td>{esc(f.get('sample'))}</td><td>{esc(f.get('technique'))}</td>"
                         f"<td>{esc(f.get('processor'))}</td><td><code>{esc(f.get('file'))}</code></td>"
                         f"<td>{esc(f.get('type'))}: {esc(f.get('error'))}</td></tr>")
        parts.append("</table></div>")
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
        parts.append("<div class='scroll'><table class='prov'>" + "".join(
            f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in run_info.items() if v is not None)
            + "</table></div>")
    parts.append(f"<details class='table'{' open' if len(inputs) <= COLLAPSE_ROWS else ''}><summary><b>Inputs</b> "
                 f"<span class='meta'>— {len(inputs)} file{'s' if len(inputs) != 1 else ''} with SHA-256, reader, "
                 "processor and parameters</span></summary>")
    parts.append("<div class='scroll'><table class='prov'><tr><th>#</th><th>sample</th><th>technique</th>"
                 "<th>file</th><th>sha256</th><th>reader</th><th>processor</th><th>parameters</th>"
                 "<th>status</th></tr>")
    for i, d in enumerate(inputs):
        params = json.dumps(jsonable(d.get("params") or {}), sort_keys=True)
        parts.append(f"<tr id='file-{i}'><td>{i}</td><td>{esc(d.get('sample'))}</td><td>{esc(d.get('technique'))}</td>"
                     f"<td><code>{esc(d.get('file'))}</code></td><td class='hash'>{esc(d.get('sha256'))}</td>"
                     f"<td>{esc(d.get('reader'))}</td><td>{esc(d.get('processor'))}</td>"
                     f"<td><code>{esc(params)}</code></td><td>{esc(d.get('status'))}</td></tr>")
    parts.append("</table></div></details><p><b>Software</b></p><div class='scroll'><table class='prov'>" + "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in software.items()) + "</table></div></section>")
    return "".join(parts)


# --------------------------------------------------------------------------- assembling
def report_html(run_or_results, claims: list | None = None, title: str | None = None,
                questions: list | None = None) -> str:
    """The report as one HTML string (see :func:`render_report`)."""
    from ..evidence.questions import conclude

    view = as_view(run_or_results, claims, title)
    title, claims = view.title, list(view.claims)
    qs = questions if questions is not None else view.questions
    conclusions = conclude(qs, claims) if qs else []
    sections = _sections(view.results)
    file_ids = {d.get("file"): i for i, d in enumerate(view.inputs)}
    explainers = {t: s.explain for t, s, _ in sections if getattr(s, "explain", None) is not None}
    nav = (["<a href='#conclusions'>conclusions</a>"] if conclusions else []) + (
        ["<a href='#evidence'>evidence</a>"] if claims else []) + [
        f"<a href='#sec-{_anchor(t)}'>{esc(s.title or t)}</a>" for t, s, _ in sections] + [
        "<a href='#failures'>failures</a>", "<a href='#provenance'>provenance</a>"]
    body = [f"<h1>{esc(title)}</h1>",
            "<p class='meta'>" + " · ".join(f"{esc(k)}: {esc(v)}" for k, v in view.info.items()
                                            if k in ("run id", "finished", "generated", "files", "results"))
            + "</p>",
            "<nav>" + " · ".join(nav) + "</nav>",
            _conclusions_html(conclusions),
            _claims_html(claims, file_ids, {t for t, _, _ in sections}, view.results, explainers),
            _comparisons_html(view.comparisons)]
    counter = [0]
    body += [_section_html(t, s, n, counter) for t, s, n in sections]
    body.append(_failures_html(view.failures, view.skipped))
    body.append(_provenance_html(view.inputs, view.software, view.info))
    body.append(f"<script type='text/javascript'>{_OPEN_TARGET}</script>")
    if counter[0]:
        body.append(_plotly_assets())
    head = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head><body>")
    return head + "\n".join(body) + "</body></html>"
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


def render_report(run_or_results, claims: list | None = None, path: str | Path = "report.html",
                  title: str | None = None, questions: list | None = None) -> Path:
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
    questions : list of QuestionSpec or dict, optional
        The study's questions (default: the view's): the report opens with a conclusions
        paragraph per question, generated from the claims it names.

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
    text = report_html(run_or_results, claims, title, questions)
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
