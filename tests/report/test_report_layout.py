"""Report layout (conclusions first, plots before tables, long tables collapsed, wide tables in their
own scroll box), honest and compact figures, and the CSV / Parquet exports."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from specproc.core.result import Quantity, Result
from specproc.evidence import evaluate_claims
from specproc.report import RunView, report_html

EVIL = "<script>alert(1)</script>"


def _spectrum_result(sample, center, technique="fake", n=4000, baseline=0.3):
    x = np.linspace(0, 100, n)
    base = baseline + 0.001 * x
    band = 0.5 * np.exp(-0.5 * ((x - center) / 1.5) ** 2)
    tiny = 0.0034 * np.exp(-0.5 * ((x - 70) / 2.0) ** 2)
    y = base + band + tiny + np.random.default_rng(1).normal(0, 0.002, n)
    fit = base + band + tiny
    return Result(
        f"{technique}.fit", technique, sample, {"band.center": Quantity(center, 0.01, "cm-1")},
        tables={"bands": pd.DataFrame([{"name": "band", "center": center}, {"name": "tiny", "center": 70.0}]),
                "per_item": pd.DataFrame({"i": np.arange(64), "value": np.arange(64) * 0.5,
                                          "note": [f"item {EVIL}"] * 64}),
                "wide": pd.DataFrame([{f"column_with_a_long_name_{i}": 1.0 + i for i in range(40)}])},
        plots=[{"kind": "spectrum", "title": f"{sample} bands", "x": x, "x_label": "wavenumber (cm-1)",
                "reverse_x": True, "series": [{"name": "data", "y": y, "role": "data"},
                                              {"name": "baseline", "y": base, "role": "baseline"},
                                              {"name": "fit", "y": fit, "role": "fit"},
                                              {"name": "band", "y": base + band, "role": "component"},
                                              {"name": "tiny", "y": base + tiny, "role": "component"},
                                              {"name": "residual", "y": y - fit, "role": "residual"}]},
               {"kind": "histogram", "title": f"{sample} values", "x_label": "E (GPa)", "bins": 30,
                "series": [{"name": "pixels", "values": np.random.default_rng(2).normal(28, 3, 10000)}]},
               {"kind": "map", "title": f"{sample} map", "z": np.arange(12.0).reshape(3, 4), "x": [0, 1, 2, 3],
                "y": [0, 1, 2], "x_label": "binding energy (eV)", "y_label": "level", "z_label": "I",
                "reverse_x": True, "equal_aspect": False},
               {"kind": "xy", "title": f"{sample} profile", "x": np.arange(5.0), "x_label": "depth (nm)",
                "y_label": "at %", "series": [{"name": "A", "y": np.arange(5.0), "err": np.full(5, 0.1)},
                                              {"name": "B", "y": 5 - np.arange(5.0)}]}],
        inputs=[{"source": f"/data/{sample}.dat", "sha256": "ab" * 32, "reader": "fake"}])


CLAIMS = [{"id": "up", "text": f"B above A {EVIL}", "rule": "> 1",
           "quantity": {"technique": "fake", "name": "band.center"},
           "compare": {"sample": "B", "reference": "A", "op": "difference"}},
          {"id": "down", "text": "B below A", "rule": "< 0",
           "quantity": {"technique": "fake", "name": "band.center"},
           "compare": {"sample": "B", "reference": "A", "op": "difference"}}]
QUESTIONS = [{"id": "moves", "text": f"Does the band move? {EVIL}", "claims": ["up", "down"]}]


@pytest.fixture(scope="module")
def page():
    results = [_spectrum_result("A", 40.0), _spectrum_result("B", 42.0)]
    claims = evaluate_claims(CLAIMS, results)
    return report_html(RunView(title="layout", results=results, claims=claims, questions=QUESTIONS))


def _figures(html: str) -> list[dict]:
    return [json.loads(s) for s in re.findall(r"<script type='application/json' class='spfig'[^>]*>(.*?)</script>",
                                              html, flags=re.S)]


def test_conclusions_open_the_report(page):
    i_c, i_e, i_s = (page.index(s) for s in ("id='conclusions'", "id='evidence'", "id='sec-fake'"))
    assert i_c < i_e < i_s
    box = page[i_c:i_e]
    assert "Does the band move? &lt;script&gt;" in box and EVIL not in page
    assert "Mixed evidence" in box and "1 for, 1 against" in box
    # each claim: verdict, link to its evidence row, value ± 2σ and rule
    assert "<span class='verdict v-supported'>supported</span> <a href='#claim-up'>B above A &lt;script&gt;" in box
    assert "2.000 ± 0.028 cm-1; rule &gt; 1" in box
    assert box.index("For:") < box.index("Against:")
    assert "id='claim-up'" in page and "id='claim-down'" in page


def test_each_section_shows_its_plots_before_its_tables(page):
    sec = page[page.index("id='sec-fake'"):]
    sec = sec[:sec.index("</section>")]
    assert sec.index("class='figs'") < sec.index("<table")
    assert sec.count("class='figure'") == 8


def test_long_tables_are_collapsed_and_wide_tables_scroll(page):
    from specproc.report.html import COLLAPSE_ROWS, _table_html

    long = _table_html("per item", pd.DataFrame({"i": np.arange(64)}))
    assert long.startswith("<details class='table'><summary><b>per item</b>") and "64 rows" in long
    short = _table_html("few", pd.DataFrame({"i": np.arange(COLLAPSE_ROWS)}))
    assert short.startswith("<div class='table'>") and "<details" not in short
    capped = _table_html("many", pd.DataFrame({"i": np.arange(1000)}), max_rows=50)
    assert capped.count("<tr>") == 50 and "first 50 of 1000 rows shown" in capped   # + the header row
    for t in re.findall(r"(<div class='scroll'>)?<table", page):
        assert t, "every table sits in its own scroll box"
    assert ".scroll{overflow-x:auto" in page
    assert "None" not in _table_html("nones", pd.DataFrame({"a": ["x", None]}))


def test_figures_are_honest_and_compact(page):
    figs = _figures(page)
    spec = next(f for f in figs if f["layout"]["title"]["text"] == "A bands")
    names = [t.get("name") for t in spec["data"]]
    # data above every fit; components filled down to the baseline (an invisible floor before each)
    data = next(t for t in spec["data"] if t["name"] == "data")
    assert data["zorder"] == 1 and all(t.get("zorder", 0) == 0 for t in spec["data"] if t["name"] != "data")
    for comp in ("band", "tiny"):
        i = names.index(comp)
        assert spec["data"][i]["fill"] == "tonexty" and names[i - 1] == f"{comp} floor"
        assert spec["data"][i - 1]["showlegend"] is False and spec["data"][i - 1]["line"]["width"] == 0
    assert not any(t.get("fill") == "tozeroy" for t in spec["data"])
    assert spec["layout"]["legend"]["traceorder"] == "normal"
    # one shared x; components only where they differ from their floor; no template copy per figure
    assert len(spec["xs"]) == 1 and data["x"] == {"xs": 0}
    band = spec["data"][names.index("band")]
    assert 0 < band["x"]["i1"] - band["x"]["i0"] < 0.3 * 3000
    assert "template" not in spec["layout"]
    assert spec["data"][0]["y"]["q"] == 2                     # 16-bit codes over the range
    hist = next(f for f in figs if f["layout"]["title"]["text"] == "A values")
    h = hist["data"][0]
    assert h["type"] == "histogram" and h["histfunc"] == "sum" and h["y"]["sc"] == 1.0   # exact counts
    m = next(f for f in figs if f["layout"]["title"]["text"] == "A map")
    assert m["layout"]["xaxis"]["autorange"] == "reversed" and "scaleanchor" not in m["layout"]["yaxis"]
    assert page.count("id='plotlyjs-gz'") == 1 and page.count("id='plotly-template'") == 1


def test_packed_arrays_round_trip():
    import base64

    from specproc.report.html import _pack

    rng = np.random.default_rng(3)
    for a in (rng.normal(0, 1e6, 3000), np.array([1.0, np.nan, 3.0, np.inf] * 10), np.arange(100.0),
              rng.normal(size=(7, 9)), np.full(20, 4.2)):
        p = _pack(a)
        codes = np.frombuffer(base64.b64decode(p["bdata"]), "<u2").reshape(np.shape(a))
        back = np.where(codes == 65535, np.nan, p["lo"] + codes * p["sc"])
        fin = np.isfinite(a)
        assert np.array_equal(np.isfinite(back), fin)
        span = np.ptp(a[fin]) if fin.any() else 0
        assert np.all(np.abs(back[fin] - a[fin]) <= span / 131068 * 1.0001 + 1e-12)
    assert _pack(np.arange(100.0))["sc"] == 1.0  # whole numbers exact


def test_section_explainers_and_mapped_figures():
    from specproc.core.section import MappedFigures, ReportSection, default_section

    r = _spectrum_result("A", 40.0)
    figs = MappedFigures(default_section("fake", "Fake", [r]).plots, lambda s: dict(s, title="changed"))
    assert len(figs) == 4 and figs[0]["title"] == "changed" and [f["title"] for f in figs[1:3]] == ["changed"] * 2
    assert ReportSection("fake", "Fake").explain is None


def test_exports_have_the_columns_scientists_replot(tmp_path):
    import specproc.export as ex

    r = _spectrum_result("A", 40.0)
    files = r.to_csv(tmp_path / "csv")
    assert files[0].name == "index.csv" and all(f.suffix == ".csv" for f in files)
    idx = pd.read_csv(files[0])
    assert sorted(idx.kind) == sorted(["quantities", "table", "table", "table", "curve", "histogram", "map",
                                       "profile"])
    d = tmp_path / "csv" / "fake_A_A.dat"
    curve = pd.read_csv(d / "curve_00_A_bands.csv")
    assert list(curve.columns) == ["wavenumber (cm-1)", "data", "baseline", "fit", "band", "tiny", "residual"]
    assert len(curve) == 4000                                 # full resolution, not the report's decimation
    np.testing.assert_allclose(curve["fit"], r.plots[0]["series"][2]["y"])
    hist = pd.read_csv(d / "histogram_01_A_values.csv")
    assert list(hist.columns) == ["series", "bin_left", "bin_right", "count"] and hist["count"].sum() == 10000
    m = pd.read_csv(d / "map_02_A_map.csv")
    assert list(m.columns) == ["binding energy (eV)", "level", "I"] and len(m) == 12
    assert m.set_index(["binding energy (eV)", "level"])["I"][(3, 2)] == 11.0
    prof = pd.read_csv(d / "profile_03_A_profile.csv")
    assert list(prof.columns) == ["depth (nm)", "A", "A stderr", "B"]
    q = pd.read_csv(d / "quantities.csv")
    assert q.iloc[0][["name", "value", "stderr", "unit"]].tolist() == ["band.center", 40.0, 0.01, "cm-1"]
    assert list(pd.read_csv(d / "table_per_item.csv").columns) == ["i", "value", "note"]
    # Parquet through the API and the callable module; two results of one sample get two folders
    files = ex.export([r, _spectrum_result("A", 41.0), ValueError("skipped")], tmp_path / "pq", formats=("parquet",))
    assert {f.suffix for f in files} == {".parquet"}
    assert pd.read_parquet(tmp_path / "pq" / "fake_A_A.dat_2" / "curve_00_A_bands.parquet").shape == (4000, 7)
    import specproc as sp

    assert callable(sp.export) and sp.export(r, tmp_path / "again", formats=("csv",), plots=False)[0].name == "index.csv"
    with pytest.raises(ValueError, match="formats"):
        ex.export(r, tmp_path / "x", formats=("xlsx",))
