"""The unified HTML report: self-contained, escaped, sections from technique modules, real browser."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specproc.core.errors import ReaderError
from specproc.core.result import Quantity, Result
from specproc.evidence import evaluate_claims
from specproc.report import render_report, render_results, report_html

EVIL = "<script>alert(1)</script>"
REPO = Path(__file__).resolve().parents[2]


def _result(sample, technique="nmr", center=-44.3, title=None):
    x = np.linspace(-80, 0, 400)
    y = np.exp(-0.5 * ((x - center) / 2) ** 2)
    return Result(
        "nmr.deconvolve", technique, sample, {"BH4.center_ppm": Quantity(center, 0.05, "ppm")},
        tables={"peaks": pd.DataFrame([{"component": "BH4", "center_ppm": center, "note": sample}])},
        plots=[{"kind": "spectrum", "title": title or f"11B {sample}", "x": x, "x_label": "δ (ppm)",
                "reverse_x": True, "series": [{"name": sample, "y": y, "role": "data"},
                                              {"name": "fit", "y": y, "role": "fit"}],
                "ticks": [{"name": "refs", "positions": [-44.3], "labels": [sample]}]}],
        params={"lineshape": "pseudo-voigt"}, meta={"nucleus": "11B"},
        inputs=[{"source": f"/data/{sample}/1", "sha256": "ab" * 32, "reader": "bruker"}])


CLAIMS = [{"id": "bh4_shift", "text": f"shift {EVIL}", "rule": "> 1.0", "unit": "ppm",
           "quantity": {"technique": "nmr", "meta": {"nucleus": "11B"}, "name": "BH4.center_ppm"},
           "compare": {"sample": EVIL, "reference": "LiBH4", "op": "difference"}},
          {"id": "ftir", "text": "FTIR red shift", "rule": "< 0",
           "quantity": {"technique": "ftir", "name": "BH.center_cm1"},
           "compare": {"sample": "LiBH4", "reference": EVIL, "op": "difference"}}]


@pytest.fixture
def report_file(tmp_path):
    results = [_result("LiBH4"), _result(EVIL, center=-41.0, title=f"11B {EVIL} </script>")]
    claims = evaluate_claims(CLAIMS, results)
    path = render_report(results + [ReaderError("truncated fid", f"/data/{EVIL}/2")], claims,
                         tmp_path / "report.html", title=f"Study {EVIL}")
    return path


def _plotlyjs_of(html: str) -> str:
    """The plotly.js the page embeds (gzip + base64 in one script element)."""
    import base64
    import gzip

    blobs = re.findall(r"<script type='application/octet-stream' id='plotlyjs-gz'>([^<]*)</script>", html)
    assert len(blobs) == 1  # embedded exactly once
    return gzip.decompress(base64.b64decode(blobs[0])).decode("utf-8")


def test_self_contained_and_ordered(report_file):
    from plotly.offline import get_plotlyjs

    html = report_file.read_text()
    assert _plotlyjs_of(html) == get_plotlyjs()  # the installed plotly.js, compressed, once
    page = html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "external resource"
    assert "cdn.plot.ly" not in page and "cdn.jsdelivr" not in page and "<script src" not in page
    i_ev, i_sec, i_fail, i_prov = (html.index(s) for s in ("id='evidence'", "id='sec-nmr'", "id='failures'",
                                                              "id='provenance'"))
    assert i_ev < i_sec < i_fail < i_prov
    assert "v-supported" in html and "v-no-data" in html
    assert "truncated fid" in html                       # failures listed
    assert "ab" * 32 in html and "bruker" in html        # provenance
    assert "pseudo-voigt" in html and "numpy" in html
    assert "href='#sec-nmr'" in html and "href='#file-1'" in html  # claims link to sections and files


def test_everything_from_files_is_escaped(report_file):
    html = report_file.read_text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script") == html.count("</script>")
    # figure JSON: '<' and '/' are escaped by plotly so '</script>' in a title cannot close the tag
    # figure JSON: '<' and '>' are escaped (as plotly does) so '</script>' in a title cannot close the tag
    fig_scripts = re.findall(r"<script type='application/json' class='spfig'[^>]*>(.*?)</script>", html, flags=re.S)
    assert len(fig_scripts) == 2
    assert all("alert(1)" in s or "11B LiBH4" in s for s in fig_scripts)
    assert all("</" not in s and "<" not in s for s in fig_scripts)
    import json

    titles = [json.loads(s)["layout"]["title"]["text"] for s in fig_scripts]
    assert "11B &lt;script&gt;alert(1)&lt;/script&gt; &lt;/script&gt;" in titles  # escaped before plotly


def test_plotly_json_escapes_script_close():
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[1], y=[1], name="</script><b>x</b>"))
    fig.update_layout(title="</script>")
    div = fig.to_html(full_html=False, include_plotlyjs=False)
    body = re.search(r"<script[^>]*>(.*)</script>", div, flags=re.S).group(1)
    assert "</script" not in body


def test_sections_come_from_technique_plugins(monkeypatch, tmp_path):
    import specproc.plugins as plugins
    from specproc.core.section import ReportSection
    from specproc.core.technique import Technique

    def good(results):
        return ReportSection("nmr", "NMR from module", "intro <b>text</b>",
                             [("summary", pd.DataFrame({"sample": [r.sample for r in results]}))], [])

    def bad(results):
        raise RuntimeError("boom")

    orig = plugins._discover
    mods = {"nmr": Technique("nmr", "NMR", report_section=good), "xrd": Technique("xrd", "XRD", report_section=bad)}

    def discover(kind):
        out = dict(orig(kind))
        if kind == "techniques":
            out = {k: plugins.PluginInfo(k, kind, "t", "t", "0", None, v) for k, v in mods.items()}
        return out

    monkeypatch.setattr(plugins, "_discover", discover)
    html = report_html([_result("A"), _result("B", technique="xrd")], [], "t")
    assert "NMR from module" in html and "intro &lt;b&gt;text&lt;/b&gt;" in html
    assert "xrd report_section failed (RuntimeError: boom)" in html and "id='sec-xrd'" in html


def test_render_results_plain(tmp_path):
    p = render_results([_result("A")], tmp_path / "sub" / "r.html", "plain")
    html = p.read_text()
    assert "<h1>plain</h1>" in html and "id='evidence'" not in html and "None: every input" in html


@pytest.mark.browser
def test_report_in_headless_chromium(report_file, tmp_path):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium not on PATH")
    out_dir = REPO / "tests" / "_output"
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / "report.png"
    if shot.exists():
        shot.unlink()
    common = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / 'chrome'}", "--enable-logging=stderr", "--v=0",
              "--virtual-time-budget=10000"]
    url = report_file.resolve().as_uri()
    dom = subprocess.run(common + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    errors = [ln for ln in dom.stderr.splitlines() if "Uncaught" in ln or "ERROR:CONSOLE" in ln]
    assert errors == []
    assert dom.stdout.count('class="main-svg"') >= 2   # both figures drawn by plotly.js
    assert "alert(1)</script>" not in dom.stdout.replace("&lt;", "<") or EVIL not in dom.stdout
    shotrun = subprocess.run(common + [f"--screenshot={shot}", "--window-size=1280,2000", url],
                             capture_output=True, text=True, timeout=120)
    assert shotrun.returncode == 0, shotrun.stderr[-2000:]
    errors = [ln for ln in shotrun.stderr.splitlines() if "Uncaught" in ln or "ERROR:CONSOLE" in ln]
    assert errors == []
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_long_traces_are_decimated_keeping_peaks():
    from specproc.report.html import MAX_POINTS, decimate_spec

    x = np.linspace(0, 1000, 200_001)
    y = np.random.default_rng(0).normal(0, 0.01, x.size)
    y[123_457] = 5.0                     # a one-point spike must survive
    spec = {"kind": "spectrum", "x": x, "series": [{"name": "data", "y": y, "role": "data"},
                                                    {"name": "fit", "y": 2 * y, "role": "fit"}]}
    d = decimate_spec(spec)
    assert len(d["x"]) <= MAX_POINTS + 2 and len(d["series"][1]["y"]) == len(d["x"])
    assert d["series"][0]["y"].max() == pytest.approx(5.0)
    assert d["series"][1]["y"].max() == pytest.approx(10.0)     # same indices for every series
    assert spec["series"][0]["y"].size == x.size                # input untouched
    short = {"kind": "spectrum", "x": x[:100], "series": [{"name": "d", "y": y[:100]}]}
    assert decimate_spec(short) is short


def test_decimation_keeps_each_buckets_first_extremes_like_a_plain_loop():
    """The vectorised min/max decimation picks what the obvious loop picks (first min and max of
    every bucket, NaN ignored); a bucket of NaN only does not fail."""
    from specproc.report.html import _keep_indices

    def loop(y, n_max):
        edges = np.linspace(0, y.size, max(1, n_max // 2) + 1).astype(int)
        keep = {0, y.size - 1}
        for a, b in zip(edges[:-1], edges[1:]):
            seg = y[a:b]
            if b > a and np.isfinite(seg).any():
                keep |= {a + int(np.nanargmin(seg)), a + int(np.nanargmax(seg))}
        return keep

    rng = np.random.default_rng(5)
    for n in (1, 9, 3001, 4096, 50_000):
        y = np.round(rng.normal(size=n), 1)          # many ties: the first occurrence must win
        if n > 100:
            y[37] = np.nan
        assert set(_keep_indices(y, 3000).tolist()) == loop(y, 3000)
    y = rng.normal(size=5000)
    y[100:140] = np.nan                              # whole buckets of NaN
    got = _keep_indices(y, 3000)
    assert loop(y, 3000) <= set(got.tolist()) and got.size <= 3002


def test_a_section_of_many_fits_draws_a_bounded_selection(tmp_path):
    """1,000 spectra must not make a 1,000-figure report: MAX_FIGURES evenly spaced, with a note."""
    from specproc.report import html as H

    x = np.linspace(0, 10, 200)
    results = [Result(processor="nmr.deconvolve", technique="nmr", sample=f"s{i:04d}",
                      plots=[{"kind": "spectrum", "title": f"fit s{i:04d}", "x": x,
                              "series": [{"name": "data", "y": np.sin(x + i), "role": "data"}]}])
               for i in range(3 * H.MAX_FIGURES + 5)]
    text = H.report_html(results, [], "many")
    assert text.count("class='figure'") == H.MAX_FIGURES
    assert f"{H.MAX_FIGURES} of {len(results)} figures shown" in text
    assert "fit s0000" in text and f"fit s{len(results) - 1:04d}" in text   # first and last drawn


# --------------------------------------------------------------------------- neutral run view, write errors
def test_report_consumes_a_neutral_run_view(tmp_path):
    """The report takes a RunView (or plain results), never pipeline internals by duck typing."""
    import inspect

    import specproc.report.html as rh
    from specproc.report import RunView

    view = RunView(title=f"run {EVIL}", results=[_result("LiBH4")],
                   failures=[{"file": "/data/x.jdx", "error": "FIRSTX = LASTX", "type": "ReaderError"}],
                   skipped=[{"sample": "C", "technique": "ftir", "processor": "ftir.x", "files": "*.spa",
                             "reason": "no file matches"}],
                   inputs=[{"sample": "LiBH4", "technique": "nmr", "file": "/data/LiBH4/1", "sha256": "cd" * 32,
                            "reader": "bruker", "processor": "nmr.deconvolve", "params": {}, "status": "ok"}],
                   software={"specproc": "x"}, info={"run id": "RUN-42"})
    from specproc.evidence import QuantityRef, compare_selected

    ref = QuantityRef(technique="nmr", name="BH4.center_ppm", meta={"nucleus": "11B"})
    view.results.append(_result(EVIL, center=-41.0))
    view.comparisons = [("shift", compare_selected(view.results, ref, EVIL, "LiBH4", "difference"))]
    html = render_report(view, None, tmp_path / "r.html").read_text()
    assert "id='comparison-shift'" in html and "[nucleus=11B]" in html and EVIL not in html
    assert re.search(r"3\.300 ± 0\.071 ppm", html)
    assert "FIRSTX = LASTX" in html and "no file matches" in html and "RUN-42" in html and "cd" * 32 in html
    assert f"run {EVIL}" not in html and "run &lt;script&gt;" in html
    with pytest.raises(TypeError, match="RunView"):
        report_html(object())
    src = inspect.getsource(rh)
    assert "hasattr(run_or_results" not in src and ".records" not in src
    # the technique CLIs' form: results plus {"file", "error"} failures
    html = render_results([_result("A")], tmp_path / "c.html", failures=[{"file": "/d/bad.jdx", "error": "empty"}]
                          ).read_text()
    assert "/d/bad.jdx" in html and "empty" in html


def test_report_write_errors_are_clear(tmp_path, monkeypatch):
    import errno
    import os

    import specproc.report.html as rh
    from specproc.core.errors import SpecprocError

    with pytest.raises(SpecprocError, match="is a directory|this is a directory"):
        render_results([_result("A")], tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpecprocError, match="cannot write report"):
        render_results([_result("A")], blocker / "r.html")  # parent is a file
    for code in (errno.ENOSPC, errno.EROFS, errno.EACCES):
        def fail(path, text, code=code):
            raise OSError(code, os.strerror(code), str(path))

        monkeypatch.setattr(rh, "atomic_write_text", fail)
        with pytest.raises(SpecprocError, match=os.strerror(code)):
            render_results([_result("A")], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
    monkeypatch.undo()
    if os.geteuid() != 0:  # a real read-only folder (root ignores permissions)
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(SpecprocError, match="Permission denied"):
                render_results([_result("A")], ro / "r.html")
        finally:
            ro.chmod(0o700)
