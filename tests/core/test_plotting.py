"""Spectrum figures: the plain-JSON figure (what the report embeds) is the figure plotly's own
subplot API builds from the same spec (geometry, axes, traces, shading, view range)."""
from __future__ import annotations

import numpy as np
import pytest

go = pytest.importorskip("plotly.graph_objects")

from specproc.core.plotting import _STYLE, make_figure, spectrum_figure_dict  # noqa: E402


def _with_plotly_api(spec):
    """The same figure through plotly's make_subplots / add_trace / update_* (the reference)."""
    from plotly.subplots import make_subplots

    series = spec["series"]
    resid = any(s["role"] == "residual" for s in series)
    fig = make_subplots(rows=2 if resid else 1, cols=1, shared_xaxes=True,
                        row_heights=[0.78, 0.22] if resid else [1.0], vertical_spacing=0.03)
    for s in series:
        fig.add_trace(go.Scatter(x=spec["x"], y=s["y"], name=s["name"], legendgroup=s["role"], **_STYLE.get(
            s["role"], dict(mode="lines", line=dict(width=1)))), row=2 if s["role"] == "residual" else 1, col=1)
    ymax = max(float(np.nanmax(s["y"])) for s in series if s["role"] == "data")
    for i, t in enumerate(spec.get("ticks", [])):
        pos = np.asarray(t["positions"], float)
        fig.add_trace(go.Scatter(x=pos, y=np.full(pos.shape, -0.04 * ymax * (i + 1)), mode="markers", name=t["name"],
                                 marker=dict(symbol="line-ns-open", size=12), text=t["labels"],
                                 hovertemplate="%{x:.3f} %{text}"), row=1, col=1)
    for sh in spec.get("shade", []):
        fig.add_vrect(x0=sh["x0"], x1=sh["x1"], fillcolor="#bbb", opacity=0.25, line_width=0,
                      annotation_text=sh["label"], annotation_position="top left", row=1, col=1)
    fig.update_layout(title=spec["title"], height=480 if resid else 400, hovermode="x unified",
                      margin=dict(l=60, r=20, t=50, b=50))
    fig.update_xaxes(title_text=spec["x_label"], row=2 if resid else 1, col=1)
    if spec.get("x_range"):
        lo, hi = sorted(spec["x_range"])
        fig.update_xaxes(range=[hi, lo] if spec.get("reverse_x") else [lo, hi])
    elif spec.get("reverse_x"):
        fig.update_xaxes(autorange="reversed")
    fig.update_yaxes(title_text=spec.get("y_label", "intensity"), row=1, col=1)
    return fig


@pytest.mark.parametrize("resid,view,ticks_shade", [(True, True, True), (False, False, False), (True, False, False),
                                                     (False, True, True)])
def test_spectrum_figure_json_is_plotlys_subplot_figure(resid, view, ticks_shade):
    rng = np.random.default_rng(0)
    x = np.linspace(60, -80, 300)
    y = np.exp(-((x + 41) / 2) ** 2) + 0.01 * rng.standard_normal(x.size)
    series = [{"name": "data", "y": y, "role": "data"}, {"name": "BH4", "y": 0.9 * y, "role": "component"},
              {"name": "fit", "y": y * 0.99, "role": "fit"}]
    if resid:
        series.append({"name": "residual", "y": y * 0.01, "role": "residual"})
    spec = {"kind": "spectrum", "title": "s <b>1</b>", "x": x, "x_label": "11B shift (ppm)", "y_label": "intensity",
            "reverse_x": True, "series": series, "x_range": (-60.0, -20.0) if view else None}
    if ticks_shade:
        spec["ticks"] = [{"name": "LiBH4", "positions": [-41.0, -30.0], "labels": ["a", "b"]}]
        spec["shade"] = [{"x0": -10.0, "x1": 5.0, "label": "masked"}]
    want = _with_plotly_api(spec).to_dict()
    got = go.Figure(spectrum_figure_dict(spec)).to_dict()
    assert got["layout"] == want["layout"]
    assert len(got["data"]) == len(want["data"])
    for a, b in zip(got["data"], want["data"]):
        assert set(a) == set(b)
        for k in a:
            if isinstance(a[k], np.ndarray):
                np.testing.assert_array_equal(a[k], b[k])
            else:
                assert a[k] == b[k], k
    assert make_figure(spec).to_dict()["layout"] == want["layout"]


def test_report_figure_is_plotlys_figure_html():
    """The report's figure (plain JSON, typed arrays) carries what plotly's own Figure.to_html writes:
    the same float32 arrays (base64 typed arrays) and the same size."""
    import re

    from specproc.report.html import decimate_spec, figure_div, safe_spec

    x = np.linspace(60, -80, 5000)
    y = np.exp(-((x + 41) / 2) ** 2)
    spec = {"kind": "spectrum", "title": "t </script>", "x": x, "x_label": "ppm", "reverse_x": True,
            "series": [{"name": "data", "y": y, "role": "data"}, {"name": "fit", "y": y, "role": "fit"},
                       {"name": "residual", "y": y * 0.01, "role": "residual"}], "x_range": (-50, -30)}
    new = figure_div(spec)
    old = make_figure(safe_spec(decimate_spec(spec))).to_html(full_html=False, include_plotlyjs=False,
                                                              config={"responsive": True})
    arrays = re.compile(r'"dtype":"(f\d)","bdata":"([^"]+)"')
    assert sorted(arrays.findall(new)) == sorted(arrays.findall(old)) and len(arrays.findall(new)) == 6
    assert len(new) == len(old)
    assert "</script>" not in new.split("<script", 1)[1].rsplit("</script>", 1)[0]  # the title cannot close it
