import json
import sys
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ParameterError, ProcessingError, SpecprocError
from specproc.core.measurement import new_measurement

sys.path.insert(0, str(Path(__file__).parent))
from _nmr_synth import spectrum  # noqa: E402

X = np.linspace(-20, -70, 500)


def test_recovery_at_snr_100_and_result_contract():
    truth = [(-41.0, 1.0, 1.0), (-50.0, 0.6, 1.5)]
    m = spectrum(truth, noise=0.47 / 100, x=X)  # height of the main line ~0.47 -> SNR 100
    fit = sp.nmr.deconvolve(m, peaks={"BH4": -41.2, "B": -49.8})
    t = fit.table.set_index("name")
    assert abs(t.loc["BH4", "center_ppm"] + 41.0) < 0.05
    assert abs(t.loc["B", "center_ppm"] + 50.0) < 0.05
    assert abs(t.loc["BH4", "area_fraction"] - 1 / 1.6) < 0.01
    for col in ("center_ppm_stderr", "fwhm_ppm", "fwhm_ppm_stderr", "height", "area", "area_fraction_stderr", "shape"):
        assert col in t
    q = fit.quantities["BH4.area_fraction"]
    assert q.stderr > 0 and fit.quantities["BH4.center_ppm"].unit == "ppm"
    assert {"r2", "redchi", "aic", "bic", "nfev", "success"} <= set(fit.stats)
    assert {"nucleus", "sf_mhz", "mas_rate_hz", "sample"} <= set(fit.meta)
    json.dumps(fit.to_dict(), allow_nan=False)
    html = fit._repr_html_()
    assert "plotly" in html.lower() and "BH4" in html
    roles = {s["role"] for s in fit.plots[0]["series"]}
    assert {"data", "component", "fit", "residual"} <= roles and fit.plots[0]["reverse_x"]


def test_errors_are_calibrated():
    """Truth within 3 sigma in >= 95 % of 40 noisy trials (centre and fraction)."""
    truth = [(-41.0, 1.0, 1.0), (-42.5, 0.5, 1.2)]  # overlapping lines: correlated errors matter
    x = np.linspace(-34, -50, 160)
    ok_c = ok_f = 0
    n = 40
    for seed in range(n):
        fit = sp.nmr.deconvolve(spectrum(truth, noise=0.01, x=x, seed=seed), peaks={"a": -41.0, "b": -42.5},
                                baseline="none")
        t = fit.table.set_index("name")
        ok_c += abs(t.loc["a", "center_ppm"] + 41.0) <= 3 * t.loc["a", "center_ppm_stderr"]
        ok_f += abs(t.loc["a", "area_fraction"] - 2 / 3) <= 3 * t.loc["a", "area_fraction_stderr"]
    assert ok_c >= 0.95 * n and ok_f >= 0.95 * n


def test_overlapping_peaks_resolved_automatically():
    truth = [(-41.0, 1.0, 1.0), (-43.0, 0.5, 1.5), (0.0, 0.3, 2.0)]
    fit = sp.nmr.deconvolve(spectrum(truth, noise=0.005))
    assert len(fit.table) == 3
    c = np.sort(fit.table["center_ppm"].values)
    assert np.allclose(c, [-43.0, -41.0, 0.0], atol=0.1)
    assert "BIC" in fit.meta["model_selection"]


def test_sidebands_credited_and_recognised():
    sf, rate = 128.38, 5000.0
    k = rate / sf
    truth = [(-41.0, 1.0, 1.0), (-41 + k, 0.15, 1.0), (-41 - k, 0.12, 1.0), (-60.0, 0.5, 1.0)]
    x = np.linspace(10, -90, 1500)
    m = spectrum(truth, noise=0.004, x=x, mas=rate, sf=sf)
    fit = sp.nmr.deconvolve(m, peaks={"a": -41.0, "b": -60.0})
    t = fit.table.set_index("name")
    assert abs(t.loc["a", "area_fraction"] - 1.27 / 1.77) < 0.01
    assert list(t.index) == ["a", "b"]  # sidebands are never species
    sbt = fit.tables["sidebands"]
    assert set(sbt["order"]) == {-1, 1} and (sbt["kind"] == "sideband").all()
    auto = sp.nmr.deconvolve(m)
    assert len(auto.table) == 2 and auto.meta.get("recognised_sidebands")
    assert abs(auto.table.sort_values("center_ppm")["area_fraction"].values[1] - 1.27 / 1.77) < 0.01


def test_shared_width_region_and_montecarlo():
    truth = [(-41.0, 1.0, 1.0), (-45.0, 0.5, 1.0)]
    m = spectrum(truth, noise=0.005, x=X)
    fit = sp.nmr.deconvolve(m, peaks=[-41, -45], shared_width=True, region=(-35, -52), shape="voigt")
    t = fit.table
    assert t["fwhm_ppm"].iloc[0] == pytest.approx(t["fwhm_ppm"].iloc[1])
    assert list(t["name"]) == ["p1", "p2"]
    mc = sp.nmr.deconvolve(m, peaks=[-41, -45], errors="montecarlo", n_mc=20)
    assert mc.meta["errors"].startswith("montecarlo")
    cov = sp.nmr.deconvolve(m, peaks=[-41, -45])
    r = mc.table["center_ppm_stderr"].values / cov.table["center_ppm_stderr"].values
    assert np.all((r > 0.3) & (r < 3))


def test_compare():
    a = sp.nmr.deconvolve(spectrum([(-41.0, 1.0, 1.0)], noise=0.005, x=X, sample="A"), peaks={"BH4": -41})
    b = sp.nmr.deconvolve(spectrum([(-40.5, 1.0, 1.4)], noise=0.005, x=X, sample="B"), peaks={"BH4": -41})
    c = sp.nmr.compare(a, b, component="BH4")
    q = c.quantities["shift_change_ppm"]
    assert q.value == pytest.approx(0.5, abs=0.03) and q.stderr > 0
    assert c.quantities["fwhm_change_ppm"].value == pytest.approx(0.4, abs=0.05)
    with pytest.raises(ParameterError):
        sp.nmr.compare(a, b, component="nope")


def test_bad_inputs():
    xrd = new_measurement(np.ones(50), {"two_theta": (np.linspace(10, 60, 50), "deg")}, technique="xrd")
    with pytest.raises(ParameterError):
        sp.nmr.deconvolve(xrd)
    flat = spectrum([], noise=0.01, x=X)
    with pytest.raises(ProcessingError):
        sp.nmr.deconvolve(flat)
    bad = new_measurement(np.r_[np.nan, np.ones(49)], {"shift": (np.linspace(0, -50, 50), "ppm")}, technique="nmr",
                          allow_nan=True, provenance={"source": "/data/bad_file.csv"})
    with pytest.raises(SpecprocError, match="bad_file.csv"):
        sp.nmr.deconvolve(bad, peaks=[-10])
    with pytest.raises(ParameterError):
        sp.nmr.deconvolve(spectrum([(-41, 1, 1)], x=X), shape="triangle")


def test_processor_plugin_and_many():
    proc = sp.plugins.get("processors", "nmr.deconvolve")
    ms = [spectrum([(-41.0, 1.0, 1.0)], noise=0.005, x=X, seed=s) for s in range(3)]
    out = proc(ms, {"peaks": [-41.0]})
    assert len(out) == 3 and all(abs(r.table["center_ppm"].iloc[0] + 41) < 0.05 for r in out)


def test_reader_notes_reach_the_result_warnings(repo_root):
    """What a reader noticed (e.g. a 2D acquisition stopped early, read up to the acquired rows) is a
    warning of every result fitted from that file (issue #21)."""
    m = sp.read(repo_root / "sample_data" / "nmr" / "jcamp" / "LiBH4_11B.jdx")
    acq = dict(m.attrs.get("acquisition") or {})
    acq["reader_notes"] = ["acquisition stopped after 3 of 8 rows; the 3 acquired rows were read"]
    m = m.copy()
    m.attrs["acquisition"] = acq
    r = sp.nmr.deconvolve(m, peaks={"BH4": -44.3})
    assert any(w.startswith("reader: acquisition stopped after 3 of 8 rows") for w in r.warnings), r.warnings
    assert r.quantities["BH4.center_ppm"].value == pytest.approx(-44.3, abs=0.05)
    clean = sp.nmr.deconvolve(sp.read(repo_root / "sample_data" / "nmr" / "jcamp" / "LiBH4_11B.jdx"), peaks={"BH4": -44.3})
    assert not any(w.startswith("reader:") for w in clean.warnings)
