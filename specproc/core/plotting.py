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
atmospheric bands, fit windows).
"""
from __future__ import annotations

import functools

import numpy as np

_STYLE = {
    "data": dict(mode="lines", line=dict(color="#222", width=1.2)),
    "fit": dict(mode="lines", line=dict(color="#d62728", width=1.8)),
    "component": dict(mode="lines", line=dict(width=1.0, dash="dot"), fill="tozeroy", opacity=0.5),
    "sideband": dict(mode="lines", line=dict(width=0.8, dash="dash", color="#999")),
    "baseline": dict(mode="lines", line=dict(color="#2ca02c", width=1.0, dash="dash")),
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
            fig.update_layout(yaxis_scaleanchor="x")
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


def spectrum_figure_dict(spec: dict) -> dict:
    """A ``"spectrum"`` plot spec as plain plotly JSON (``{"data", "layout"}``).

    The one definition of the spectrum figure: :func:`make_figure` wraps it in a
    ``plotly.graph_objects.Figure`` (notebooks); the report serialises it directly, without
    plotly's per-property validation (~15 ms per figure, most of a report's time for 48 figures).
    The layout is plotly's own subplot geometry (tests compare it with ``make_subplots``).
    """
    import copy

    series = spec.get("series", [])
    has_resid = any(s.get("role") == "residual" for s in series)
    x = np.asarray(spec["x"])
    data = []
    for s in series:
        role = s.get("role", "data")
        axes = ("x2", "y2") if has_resid and role == "residual" else ("x", "y")
        style = copy.deepcopy(_STYLE.get(role, dict(mode="lines", line=dict(width=1))))
        data.append({"type": "scatter", "x": np.asarray(s.get("x", x)), "y": np.asarray(s["y"]), "name": s["name"],
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
                  margin={"l": 60, "r": 20, "t": 50, "b": 50}, template=_template())
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


@functools.lru_cache(maxsize=1)
def _template() -> dict:
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
