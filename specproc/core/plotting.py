"""Plot specifications -> plotly figures (one place for every technique).

A plot spec is a plain dict so results stay serialisable:

``{"kind": "spectrum", "title": str, "x": array, "x_label": str, "y_label": str,
"reverse_x": bool, "series": [{"name", "y", "role"}], "ticks": [{"name", "positions", "labels"}]}``

roles: ``data``, ``fit`` (envelope), ``component``, ``sideband``, ``baseline``, ``residual``.
``{"kind": "map", "title", "z": 2D, "x", "y", "x_label", "y_label", "z_label"}`` for images
(physical axes, a colour bar, equal aspect unless ``"equal_aspect": False``; optional ``"colorscale"``,
``"zmin"``, ``"zmax"``).
``{"kind": "histogram", "title", "series": [{"name", "values"}], "x_label", "bins"}`` for
distributions (e.g. per-pixel moduli or π* energies of a map).
A spectrum spec may carry ``"shade": [{"x0", "x1", "label"}]``: shaded x ranges (masked
atmospheric bands, fit windows). Maps may say ``"reverse_x": True`` / ``"reverse_y": True``
(e.g. binding energy decreasing to the right).

Honest drawing of a spectrum: the data are drawn above every fitted curve (``zorder``); when the
spec has a baseline, components and sidebands stand on it and a component's fill goes down to
the baseline, never to zero (a component given without the baseline — its values are near zero
where the baseline is not — is drawn on it); without a baseline a component fills to zero.
"""
from __future__ import annotations

import functools

import numpy as np

_STYLE = {
    "data": dict(mode="lines", line=dict(color="#222", width=1.2), zorder=1),   # above every fit
    "fit": dict(mode="lines", line=dict(color="#d62728", width=1.8)),
    "component": dict(mode="lines", line=dict(width=1.0, dash="dot"), fill="tozeroy", opacity=0.5),
    "sideband": dict(mode="lines", line=dict(width=0.8, dash="dash", color="#999")),
    "baseline": dict(mode="lines", line=dict(color="#2ca02c", width=1.0, dash="dash")),
    "residual": dict(mode="lines", line=dict(color="#7f7f7f", width=0.8)),
}

_PLOTLYJS_SHOWN = False


def make_figure(spec: dict):
    """The plotly ``Figure`` of a plot spec (notebooks, ``Result.figures``)."""
    import plotly.graph_objects as go

    kind = spec.get("kind", "spectrum")
    if kind == "histogram":
        fig = go.Figure()
        for s in spec.get("series", []):
            v = np.asarray(s["values"], float).ravel()
            v = v[np.isfinite(v)]
            fig.add_trace(go.Histogram(x=v, name=s["name"], nbinsx=int(spec.get("bins", 60)), opacity=0.7))
        fig.update_layout(title=spec.get("title"), xaxis_title=spec.get("x_label"),
                          yaxis_title=spec.get("y_label", "count"), barmode="overlay", height=380)
        return fig
    if kind == "map":
        fig = go.Figure(go.Heatmap(z=np.asarray(spec["z"], float), x=spec.get("x"), y=spec.get("y"),
                                   colorscale=spec.get("colorscale", "Viridis"), zmin=spec.get("zmin"),
                                   zmax=spec.get("zmax"), colorbar=dict(title=spec.get("z_label", ""))))
        fig.update_layout(title=spec.get("title"), xaxis_title=spec.get("x_label"),
                          yaxis_title=spec.get("y_label"), height=450)
        if spec.get("equal_aspect", True):  # images: one scale on both axes; profiles (depth vs energy): off
            fig.update_layout(yaxis_scaleanchor="x", yaxis_constrain="domain", xaxis_constrain="domain")
        if spec.get("reverse_x"):
            fig.update_xaxes(autorange="reversed")
        if spec.get("reverse_y"):
            fig.update_yaxes(autorange="reversed")
        return fig
    if kind == "xy":
        fig = go.Figure()
        for s in spec["series"]:
            fig.add_trace(go.Scatter(x=s.get("x", spec.get("x")), y=s["y"], name=s["name"],
                                     mode=s.get("mode", "lines+markers"),
                                     error_y=dict(array=s["err"]) if s.get("err") is not None else None))
        fig.update_layout(title=spec.get("title"), xaxis_title=spec.get("x_label"),
                          yaxis_title=spec.get("y_label"), height=400)
        return fig
    return go.Figure(spectrum_figure_dict(spec))


#: vertical layout of a spectrum with its residual panel (what plotly's make_subplots gives for
#: rows=2, shared_xaxes=True, row_heights=[0.78, 0.22], vertical_spacing=0.03)
_RESID_SPACING, _RESID_HEIGHTS = 0.03, (0.78, 0.22)


def _support(d: np.ndarray, rel: float = 1e-3) -> slice:
    """The index range where ``|d|`` exceeds ``rel`` of its maximum, one point of margin each side
    (a component is drawn where it differs from its floor; elsewhere it is the floor)."""
    a = np.abs(np.nan_to_num(np.asarray(d, float)))
    top = float(a.max()) if a.size else 0.0
    idx = np.flatnonzero(a > rel * top) if top > 0 else np.zeros(0, int)
    if idx.size == 0:
        return slice(0, min(a.size, 2))
    return slice(max(int(idx[0]) - 1, 0), min(int(idx[-1]) + 2, a.size))


def _on_baseline(y: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``y`` as drawn on the baseline: unchanged when it already includes the baseline (it sits
    on it where the component vanishes), else ``y + base`` (a component given alone)."""
    y = np.asarray(y, float)
    with np.errstate(invalid="ignore"):
        off_base = np.nanmedian(np.abs(y - base))
        off_zero = np.nanmedian(np.abs(y))
    return y if not off_base > off_zero else y + base


def spectrum_figure_dict(spec: dict, compact: bool = False) -> dict:
    """A ``"spectrum"`` plot spec as plain plotly JSON (``{"data", "layout"}``).

    The one definition of the spectrum figure: :func:`make_figure` wraps it in a
    ``plotly.graph_objects.Figure`` (notebooks); the report serialises it directly, without
    plotly's per-property validation (~15 ms per figure, most of a report's time for 48 figures).
    The layout is plotly's own subplot geometry (tests compare it with ``make_subplots``).

    Data are drawn above the fits. With a baseline series, each component stands on the baseline
    and is filled down to it (an invisible copy of the baseline under each component, plotly's
    ``tonexty``); sidebands stand on it too. ``compact=True`` (the report) draws components and
    sidebands only where they differ from their floor (> 1e-3 of their height): the x arrays are
    then views of the spec's ``x``.
    """
    import copy

    series = spec.get("series", [])
    has_resid = any(s.get("role") == "residual" for s in series)
    x = np.asarray(spec["x"])
    base = next((np.asarray(s["y"], float) for s in series if s.get("role") == "baseline" and "x" not in s
                 and np.shape(s["y"]) == x.shape), None)
    data = []
    for s in series:
        role = s.get("role", "data")
        axes = ("x2", "y2") if has_resid and role == "residual" else ("x", "y")
        style = copy.deepcopy(_STYLE.get(role, dict(mode="lines", line=dict(width=1))))
        sx, sy = np.asarray(s.get("x", x)), np.asarray(s["y"])
        on_x = "x" not in s and sy.shape == x.shape and np.issubdtype(sy.dtype, np.number)
        if role in ("component", "sideband") and on_x:
            floor = base if base is not None else np.zeros(x.shape)
            if base is not None:
                sy = _on_baseline(sy, base)
            sl = _support(sy - floor) if compact else slice(None)
            sx, sy = x[sl], sy[sl]
            if base is not None and role == "component":
                # the fill's floor: an invisible copy of the baseline right before the component
                data.append({"type": "scatter", "x": sx, "y": floor[sl].astype(sy.dtype, copy=False),
                             "name": f"{s['name']} floor", "legendgroup": role, "mode": "lines",
                             "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False,
                             "xaxis": axes[0], "yaxis": axes[1]})
                style["fill"] = "tonexty"
        data.append({"type": "scatter", "x": sx, "y": sy, "name": s["name"],
                     "legendgroup": role, **style, "xaxis": axes[0], "yaxis": axes[1]})
    ymax = max((float(np.nanmax(s["y"])) for s in series if s.get("role") == "data"), default=1.0)
    for i, t in enumerate(spec.get("ticks", [])):
        pos = np.asarray(t["positions"], float)
        data.append({"type": "scatter", "x": pos, "y": np.full(pos.shape, -0.04 * ymax * (i + 1)), "mode": "markers",
                     "name": t["name"], "marker": {"symbol": "line-ns-open", "size": 12}, "text": t.get("labels"),
                     "hovertemplate": "%{x:.3f} %{text}", "xaxis": "x", "yaxis": "y"})
    if has_resid:
        gap = _RESID_SPACING
        low = round(_RESID_HEIGHTS[1] / sum(_RESID_HEIGHTS) * (1 - gap), 4)
        layout = {"xaxis": {"anchor": "y", "domain": [0.0, 1.0], "matches": "x2", "showticklabels": False},
                  "yaxis": {"anchor": "x", "domain": [round(low + gap, 4), 1.0]},
                  "xaxis2": {"anchor": "y2", "domain": [0.0, 1.0]}, "yaxis2": {"anchor": "x2", "domain": [0.0, low]}}
    else:
        layout = {"xaxis": {"anchor": "y", "domain": [0.0, 1.0]}, "yaxis": {"anchor": "x", "domain": [0.0, 1.0]}}
    xaxes = [k for k in layout if k.startswith("xaxis")]
    shapes, notes = [], []
    for sh in spec.get("shade", []) or []:
        shapes.append({"type": "rect", "xref": "x", "yref": "y domain", "x0": float(sh["x0"]), "x1": float(sh["x1"]),
                       "y0": 0, "y1": 1, "fillcolor": sh.get("color", "#bbb"), "opacity": 0.25, "line": {"width": 0}})
        notes.append({"text": sh.get("label", ""), "showarrow": False, "x": float(sh["x0"]), "xanchor": "left",
                      "xref": "x", "y": 1, "yanchor": "top", "yref": "y domain"})
    if shapes:
        layout["shapes"], layout["annotations"] = shapes, notes
    layout.update(title={"text": spec.get("title")}, height=480 if has_resid else 400, hovermode="x unified",
                  margin={"l": 60, "r": 20, "t": 50, "b": 50}, template=plotly_template())
    if any(tr.get("fill") == "tonexty" for tr in data):
        layout["legend"] = {"traceorder": "normal"}  # plotly reverses the legend of "tonexty" fills otherwise
    layout[xaxes[-1]]["title"] = {"text": spec.get("x_label")}
    if spec.get("x_range") is not None:
        # initial view (e.g. the fitted lines); plotly's autoscale still shows the whole axis
        lo, hi = sorted(float(v) for v in spec["x_range"])
        for ax in xaxes:
            layout[ax]["range"] = [hi, lo] if spec.get("reverse_x") else [lo, hi]
    elif spec.get("reverse_x"):
        for ax in xaxes:
            layout[ax]["autorange"] = "reversed"
    layout["yaxis"]["title"] = {"text": spec.get("y_label", "intensity")}
    return {"data": data, "layout": layout}


def histogram_figure_dict(spec: dict) -> dict:
    """A ``"histogram"`` plot spec as plain plotly JSON with the counts computed here (``numpy.histogram``,
    ``spec["bins"]`` equal bins over the finite values of all series): a plotly histogram of the bin
    centres weighted by the counts (``histfunc: sum``), so the page carries ~60 numbers per series
    instead of every value, and the bins are exactly those of the exports."""
    vals = [np.asarray(s["values"], float).ravel() for s in spec.get("series", [])]
    vals = [v[np.isfinite(v)] for v in vals]
    allv = np.concatenate(vals) if vals else np.zeros(0)
    nb = int(spec.get("bins", 60))
    lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, nb + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    data = []
    for s, v in zip(spec.get("series", []), vals):
        counts, _ = np.histogram(v, edges)
        data.append({"type": "histogram", "x": centres, "y": counts.astype(float), "histfunc": "sum",
                     "name": s["name"], "opacity": 0.7, "autobinx": False,
                     "xbins": {"start": float(edges[0]), "end": float(edges[-1]), "size": float(edges[1] - edges[0])}})
    layout = {"title": {"text": spec.get("title")}, "xaxis": {"title": {"text": spec.get("x_label")}},
              "yaxis": {"title": {"text": spec.get("y_label", "count")}}, "barmode": "overlay", "height": 380,
              "template": plotly_template()}
    return {"data": data, "layout": layout}


def histogram_counts(spec: dict) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``[(series name, bin edges, counts)]`` of a histogram spec (the bins of :func:`histogram_figure_dict`)."""
    fig = histogram_figure_dict(spec)
    out = []
    for tr in fig["data"]:
        b = tr["xbins"]
        edges = np.linspace(b["start"], b["end"], len(tr["x"]) + 1)
        out.append((tr["name"], edges, tr["y"].astype(int)))
    return out


@functools.lru_cache(maxsize=1)
def plotly_template() -> dict:
    """plotly's default template as JSON (what a graph_objects figure embeds), made once."""
    import plotly.io as pio

    return pio.templates[pio.templates.default].to_plotly_json()


def figure_html(fig, include_plotlyjs: bool | str | None = None) -> str:
    """HTML of a figure for notebooks; plotly.js is embedded once per session (offline)."""
    global _PLOTLYJS_SHOWN
    if include_plotlyjs is None:
        include_plotlyjs = not _PLOTLYJS_SHOWN
        _PLOTLYJS_SHOWN = True
    return fig.to_html(full_html=False, include_plotlyjs=include_plotlyjs)
