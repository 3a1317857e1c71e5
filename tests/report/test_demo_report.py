"""The study's report (pipelines/libh4_linbh.yaml over sample_data/): conclusions first, under 5 MB,
plots before tables, honest figures, exports of what scientists re-plot; in a real browser no page
wider than the window."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
PIPELINE = REPO / "pipelines" / "libh4_linbh.yaml"
MAX_BYTES = 5_000_000


#: one xdist worker (tests/conftest.py ``pytest_xdist_make_scheduler``) builds the session's demo run for these tests and
#: tests/pipeline/test_sample_pipeline.py (tests/conftest.py ``demo_run``)
pytestmark = pytest.mark.xdist_group("demo_run")


@pytest.fixture(scope="module")
def demo(demo_run):
    """The session's run of the study pipeline: its own run folder (report.html, exports/), which
    later runs into the same output folder (the sample-pipeline test's warm run) leave as it is."""
    assert Path(demo_run.summary.pipeline_path).resolve() == PIPELINE.resolve()
    report = demo_run.run_dir / "report.html"
    return dict(summary=demo_run.summary, out=demo_run.run_dir, report=report,
                html=report.read_text(encoding="utf-8"))


def _figures(html):
    return {json.loads(m)["layout"]["title"]["text"]: json.loads(m) for m in
            re.findall(r"<script type='application/json' class='spfig'[^>]*>(.*?)</script>", html, flags=re.S)}


def test_demo_report_is_small_and_opens_with_the_conclusions(demo):
    size = demo["report"].stat().st_size
    print(f"demo report: {size / 1e6:.2f} MB")
    assert size < MAX_BYTES, f"demo report is {size / 1e6:.2f} MB"
    html = demo["html"]
    i_c, i_e = html.index("id='conclusions'"), html.index("id='evidence'")
    assert i_c < i_e < html.index("<section id='sec-")
    box = html[i_c:i_e]
    for q in ("Is LiBH4 confined", "What interphase forms", "fast, stable, Li+-only conductor"):
        assert q in box
    assert box.count("class='question ") == 3
    # every claim a question names is listed with its verdict and its value ± 2σ
    for cid in ("bh4_shift", "xrd_phases", "xps_interphase_species", "afm_modulus_ratio", "echem_transference"):
        assert f"href='#claim-{cid}'" in box
    assert "phase LiBH4 present in LiBH4-70LiNH2BH3" in box and "species Li3N present in LiBH4-70LiNBH" in box


def test_multi_check_claims_are_named_with_their_basis(demo):
    html = demo["html"]
    ev = html[html.index("id='evidence'"):html.index("id='comparisons'")]
    assert "LiBH4-70LiNBH: 1; LiBH4-70LiNBH: 1" not in ev
    assert "↳ phase LiNH2BH3 in LiBH4-70LiNBH" in ev and "↳ species Li-B in LiBH4" in ev
    # what a presence call rests on, not "no uncertainty available"
    phases = ev[ev.index("id='claim-xrd_phases'"):ev.index("id='claim-d101_expansion'")]
    assert "strong reflections matched (coverage" in phases and "chance coincidences p =" in phases
    assert "no uncertainty available; decided on the value alone</td>" not in phases.replace(
        "(amorphous_fraction", "")
    xps = ev[ev.index("id='claim-xps_interphase_species'"):ev.index("id='claim-xps_interphase_thickness'")]
    assert "detection limit 1 at %" in xps and "σ above it" in xps
    assert xps.count("rests on: ") == 4


def test_each_section_plots_before_tables(demo):
    html = demo["html"]
    sections = re.findall(r"<section id='sec-([^']+)'>(.*?)</section>", html, flags=re.S)
    assert {t for t, _ in sections} >= {"nmr", "xrd", "ftir", "eels", "xps", "afm"}
    for tech, body in sections:
        if "<table" in body and "class='figure'" in body:
            assert body.index("class='figure'") < body.index("<table"), tech
    afm = dict(sections)["afm"]
    assert re.search(r"<details class='table'><summary><b>AFM: force curves[^<]*</b> <span class='meta'>— 64 rows", afm)
    xrd = dict(sections)["xrd"]
    assert "<details class='table'><summary><b>XRD: indexed reflections</b>" in xrd


def test_demo_figures_are_honest(demo):
    figs = _figures(demo["html"])
    ftir = figs["LiNBH: FTIR bands 2051-2550 cm-1"]
    names = [t["name"] for t in ftir["data"]]
    band = ftir["data"][names.index("BH_stretch")]
    assert band["fill"] == "tonexty" and names[names.index("BH_stretch") - 1] == "BH_stretch floor"
    assert not any(t.get("fill") == "tozeroy" for t in ftir["data"])
    heat = next(f for t, f in figs.items() if "B 1s vs depth" in t)
    assert heat["layout"]["xaxis"]["autorange"] == "reversed" and "scaleanchor" not in heat["layout"].get("yaxis", {})
    curve = next(f for t, f in figs.items() if ": curve (" in t)
    data = next(t for t in curve["data"] if t["name"] == "approach")
    assert data["zorder"] == 1 and all(t.get("zorder", 0) < 1 for t in curve["data"] if t is not data)


def test_demo_exports(demo):
    data = Path(demo["out"]) / "exports" / "data"
    idx = pd.read_csv(data / "index.csv")
    assert (data / "index.parquet").is_file()
    kinds = idx.groupby("technique")["kind"].apply(set).to_dict()
    assert {"curve", "table", "quantities"} <= kinds["nmr"] and {"map", "histogram"} <= kinds["afm"]
    assert {"profile", "map"} <= kinds["xps"]

    def one(technique, pattern):
        rows = idx[(idx.technique == technique) & idx.file.str.contains(pattern, regex=True)]
        assert len(rows), (technique, pattern)
        return pd.read_csv(data / rows.file.iloc[0])

    nmr = one("nmr", r"LiBH4-70LiNBH_11B-1/curve_")
    assert {"data", "fit", "residual", "BH4", "N2BH", "NBH3"} <= set(nmr.columns) and nmr.columns[0].endswith("(ppm)")
    prof = one("xps", r"table_profile\.csv")
    assert {"depth_nm", "Li3N at%", "Li-B at%"} <= set(prof.columns)
    peaks = one("xrd", r"LiBH4_as_received.*table_peaks\.csv")
    assert {"two_theta_deg", "d_nm", "d_nm_stderr", "hkl", "phase"} <= set(peaks.columns)
    hist = one("afm", r"histogram_.*modulus")
    assert list(hist.columns) == ["series", "bin_left", "bin_right", "count"]
    amap = one("afm", r"map_.*modulus")
    assert amap.shape[1] == 3 and len(amap) >= 64 * 64
    assert (Path(demo["out"]) / "exports" / "data" / idx.file.iloc[0]).with_suffix(".parquet").is_file()


@pytest.mark.browser
def test_demo_report_in_chromium_fits_the_window(demo, tmp_path):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium not on PATH")
    probe = ("<script>window.addEventListener('load',function(){setTimeout(function(){var d=document.createElement("
             "'pre');d.id='probe';d.textContent='W='+document.documentElement.scrollWidth+' H='+"
             "document.documentElement.scrollHeight+' SVG='+document.querySelectorAll('.main-svg').length+' FAIL='+"
             "document.querySelectorAll('.figfail').length;document.body.appendChild(d);},4000);});</script>")
    page = tmp_path / "report.html"
    page.write_text(demo["html"].replace("</body>", probe + "</body>"), encoding="utf-8")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'chrome'}",
           "--window-size=1400,1000", "--virtual-time-budget=30000", "--enable-logging=stderr", "--v=0",
           "--dump-dom", page.as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert not [ln for ln in p.stderr.splitlines() if "Uncaught" in ln]
    m = re.search(r"W=(\d+) H=(\d+) SVG=(\d+) FAIL=(\d+)", p.stdout)
    assert m, p.stdout[-500:]
    width, height, svgs, fails = map(int, m.groups())
    print(f"demo report: {width} x {height} px, {svgs} plot svgs")
    assert width <= 1400          # wide tables scroll inside their own box
    assert fails == 0 and svgs >= 50
