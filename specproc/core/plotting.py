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
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

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
    series = spec.get("series", [])
    has_resid = any(s.get("role") == "residual" for s in series)
    fig = make_subplots(rows=2 if has_resid else 1, cols=1, shared_xaxes=True,
                        row_heights=[0.78, 0.22] if has_resid else [1.0], vertical_spacing=0.03)
    x = np.asarray(spec["x"])
    for s in series:
        role = s.get("role", "data")
        row = 2 if role == "residual" else 1
        style = dict(_STYLE.get(role, dict(mode="lines", line=dict(width=1))))
        fig.add_trace(go.Scatter(x=np.asarray(s.get("x", x)), y=np.asarray(s["y"]), name=s["name"],
                                 legendgroup=role, **style), row=row, col=1)
    ymax = max((float(np.nanmax(s["y"])) for s in series if s.get("role") == "data"), default=1.0)
    for i, t in enumerate(spec.get("ticks", [])):
        pos = np.asarray(t["positions"], float)
        y0 = -0.04 * ymax * (i + 1)
        fig.add_trace(go.Scatter(x=pos, y=np.full(pos.shape, y0), mode="markers", name=t["name"],
                                 marker=dict(symbol="line-ns-open", size=12), text=t.get("labels"),
                                 hovertemplate="%{x:.3f} %{text}"), row=1, col=1)
    for sh in spec.get("shade", []) or []:
        fig.add_vrect(x0=float(sh["x0"]), x1=float(sh["x1"]), fillcolor=sh.get("color", "#bbb"), opacity=0.25,
                      line_width=0, annotation_text=sh.get("label", ""), annotation_position="top left",
                      row=1, col=1)
    fig.update_layout(title=spec.get("title"), height=480 if has_resid else 400, hovermode="x unified",
                      margin=dict(l=60, r=20, t=50, b=50))
    fig.update_xaxes(title_text=spec.get("x_label"), row=2 if has_resid else 1, col=1)
    if spec.get("x_range") is not None:
        # initial view (e.g. the fitted lines); plotly's autoscale still shows the whole axis
        lo, hi = sorted(float(v) for v in spec["x_range"])
        fig.update_xaxes(range=[hi, lo] if spec.get("reverse_x") else [lo, hi])
    elif spec.get("reverse_x"):
        fig.update_xaxes(autorange="reversed")
    fig.update_yaxes(title_text=spec.get("y_label", "intensity"), row=1, col=1)
    return fig


def figure_html(fig, include_plotlyjs: bool | str | None = None) -> str:
    """HTML of a figure for notebooks; plotly.js is embedded once per session (offline)."""
    global _PLOTLYJS_SHOWN
    if include_plotlyjs is None:
        include_plotlyjs = not _PLOTLYJS_SHOWN
        _PLOTLYJS_SHOWN = True
    return fig.to_html(full_html=False, include_plotlyjs=include_plotlyjs)
