"""AFM maps: recovery of known truths (random, not the study's values) through levelling, roughness,
protrusions and modulus statistics; the sample data against truth.json; bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ParameterError, ProcessingError, SpecprocError
from specproc.core.measurement import new_measurement
from specproc.testing.contract import ProcessorContract

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "afm"


def afm_map(channels, scan_m, sample="s"):
    """Measurement (channel, y, x) from [(name, 2D array, unit)]."""
    ny, nx = channels[0][1].shape
    m = new_measurement(np.stack([c[1] for c in channels]),
                        {"channel": (np.array([c[0] for c in channels], dtype=object), ""),
                         "y": ((np.arange(ny) + 0.5) * scan_m / ny, "m"), "x": ((np.arange(nx) + 0.5) * scan_m / nx, "m")},
                        technique="afm", units="mixed", sample=sample, signal_type="map", allow_nan=True,
                        acquisition={"scan_size_x_m": scan_m, "scan_size_y_m": scan_m})
    m.attrs["channel_units"] = [c[2] for c in channels]
    return m


def rough_surface(rng, n, sq, corr_px=1.0):
    from scipy import ndimage

    f = ndimage.gaussian_filter(rng.normal(size=(n, n)), corr_px, mode="wrap") if corr_px else rng.normal(size=(n, n))
    return (f - f.mean()) / f.std() * sq


def add_artifacts(rng, z, tilt_m=30e-9, row_sd=None, n_spikes=20, spike_m=200e-9):
    n = z.shape[0]
    yy, xx = np.mgrid[0:n, 0:n]
    out = z + tilt_m * (rng.uniform(-1, 1) * xx + rng.uniform(-1, 1) * yy) / n + rng.uniform(-1e-6, 1e-6)
    if row_sd:
        out = out + rng.normal(0, row_sd, n)[:, None]
    idx = rng.choice(n * n, n_spikes, replace=False)
    out.flat[idx] += rng.choice([-1, 1], n_spikes) * spike_m
    return out


def bumps(rng, n, count, h_range=(30e-9, 90e-9), sep=30, margin=12):
    yy, xx = np.mgrid[0:n, 0:n]
    z, centres = np.zeros((n, n)), []
    while len(centres) < count:
        c = rng.uniform(margin, n - margin, 2)
        if all(np.hypot(*(c - d)) > sep for d in centres):
            centres.append(c)
    for cy, cx in centres:
        z += rng.uniform(*h_range) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2, 3.5) ** 2))
    return z


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_roughness_recovered_within_2_percent(seed):
    rng = np.random.default_rng(seed)
    n = 256
    sq = rng.uniform(0.5e-9, 8e-9)
    z = rough_surface(rng, n, sq, corr_px=rng.uniform(0.8, 2.0))
    d = z - z.mean()
    raw = add_artifacts(rng, z, row_sd=rng.uniform(0.5, 3) * sq)
    r = sp.afm.analyse(afm_map([("Height", raw, "m")], 4e-6))
    q = r.quantities
    assert q["roughness.Sq_m"].value == pytest.approx(np.sqrt(np.mean(d ** 2)), rel=0.02)
    assert q["roughness.Sa_m"].value == pytest.approx(np.mean(np.abs(d)), rel=0.02)
    assert q["roughness.Sku"].value == pytest.approx(np.mean(d ** 4) / np.mean(d ** 2) ** 2, abs=0.15)
    assert abs(q["roughness.Ssk"].value) < 0.15
    assert q["protrusions.count"].value == 0            # spikes are not protrusions
    assert r.meta["n_outliers"] >= 18                   # the 20 spikes (2 may land on each other's 3 x 3)


def test_plane_and_poly2_levelling():
    rng = np.random.default_rng(11)
    n = 128
    z = rough_surface(rng, n, 2e-9, 0)
    yy, xx = np.mgrid[0:n, 0:n] / n
    bow = 50e-9 * ((xx - 0.5) ** 2 + 0.5 * (yy - 0.3) ** 2) + 20e-9 * xx
    r2 = sp.afm.analyse(afm_map([("Height", z + bow, "m")], 2e-6), level="poly2")
    assert r2.quantities["roughness.Sq_m"].value == pytest.approx(z.std(), rel=0.02)
    r1 = sp.afm.analyse(afm_map([("Height", z + 20e-9 * xx - 10e-9 * yy, "m")], 2e-6), level="plane")
    assert r1.quantities["roughness.Sq_m"].value == pytest.approx(z.std(), rel=0.02)
    # the bow is not a plane: plane levelling leaves it (no silent pretence)
    rp = sp.afm.analyse(afm_map([("Height", z + bow, "m")], 2e-6), level="plane")
    assert rp.quantities["roughness.Sq_m"].value > 1.5 * z.std()


@pytest.mark.parametrize("seed", [21, 22])
def test_protrusion_count_exact_and_heights(seed):
    rng = np.random.default_rng(seed)
    n, scan = 256, 6e-6
    count = int(rng.integers(5, 35))
    z = rough_surface(rng, n, 2e-9, 1.0) + bumps(rng, n, count)
    raw = add_artifacts(rng, z, row_sd=3e-9)
    r = sp.afm.analyse(afm_map([("Height", raw, "m")], scan))
    q = r.quantities
    assert q["protrusions.count"].value == count
    assert q["protrusions.density_per_um2"].value == pytest.approx(count / (scan * 1e6) ** 2)
    assert q["protrusions.density_per_um2"].stderr == pytest.approx(np.sqrt(count) / (scan * 1e6) ** 2)
    t = r.tables["protrusions"]
    assert len(t) == count and (t.height_m > 25e-9).all() and (t.height_m < 100e-9).all()
    px_area = (scan / n) ** 2
    assert (t.area_m2 >= 4 * px_area).all()


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_mean_modulus_within_1_percent_with_invalid_pixels(seed):
    rng = np.random.default_rng(seed)
    n = 200
    Emean = 10 ** rng.uniform(8, 11.5)                  # 0.1 - 300 GPa
    E = Emean * np.exp(rng.uniform(0.05, 0.3) * rough_surface(rng, n, 1.0, 2.0))
    truth = E.mean()
    bad = rng.choice(n * n, 400, replace=False)
    E.flat[bad[:150]] = 0.0
    E.flat[bad[150:250]] = -Emean
    E.flat[bad[250:350]] = np.nan
    E.flat[bad[350:]] = 1e13
    z = rough_surface(rng, n, 1e-9)
    r = sp.afm.analyse(afm_map([("Height", z, "m"), ("DMT Modulus", E, "Pa")], 3e-6))
    q = r.quantities
    valid_mean = np.delete(E.ravel(), bad).mean()
    assert q["modulus.mean_Pa"].value == pytest.approx(valid_mean, rel=1e-3)
    assert q["modulus.mean_Pa"].value == pytest.approx(truth, rel=0.01)
    assert q["modulus.n_invalid"].value == 400 and q["modulus.n_valid"].value == n * n - 400
    assert 0 < q["modulus.mean_Pa"].stderr < 0.05 * truth
    st = r.tables["modulus_stats"].iloc[0]
    assert st.invalid_nonpositive == 250 and st.invalid_nonfinite == 100 and st.invalid_absurd == 50
    assert r.tables["modulus_histogram"]["count"].sum() == n * n - 400


def test_sample_data_against_truth_and_ratio():
    truth = json.loads((SAMPLE / "truth.json").read_text())
    res = {}
    for name, t in truth["samples"].items():
        r = sp.afm.analyse(sp.read(SAMPLE / t["file"], sample=name))
        q = r.quantities
        assert q["modulus.mean_Pa"].value == pytest.approx(t["modulus_mean_Pa"], rel=0.01)
        assert q["modulus.n_invalid"].value == t["n_invalid_modulus"]
        assert q["protrusions.count"].value == t["protrusions"]["count"]
        assert q["roughness.Sq_m"].value == pytest.approx(t["Sq_m"], rel=0.03)
        res[name] = r
    c = sp.afm.compare_moduli(res["LiBH4"], res["LiBH4-70LiNBH"])  # (reference, sample)
    assert c.tables["comparison"]["reference"].iloc[0] == "LiBH4"
    ratio = c.quantities["modulus.ratio"]
    assert ratio.value == pytest.approx(truth["modulus_ratio"], rel=0.01)
    assert ratio.stderr is not None and 0 < ratio.stderr < 0.05 * ratio.value
    # the report section renders both maps and the comparison
    sec = sp.afm.report_section(list(res.values()))
    caps = [c for c, _ in sec.tables]
    assert any("ratio" in c for c in caps)
    kinds = [p["kind"] for p in sec.plots]
    assert kinds.count("map") >= 4 and "histogram" in kinds
    hm = next(p for p in sec.plots if p["kind"] == "map")
    assert hm["x_label"] == "x (µm)" and hm["z_label"]
    from specproc.core.plotting import make_figure

    make_figure(hm)


def test_bad_input():
    rng = np.random.default_rng(0)
    z = rough_surface(rng, 32, 1e-9)
    with pytest.raises(ParameterError, match="not m"):
        sp.afm.analyse(afm_map([("Phase", z, "deg")], 1e-6), channel="Phase")
    with pytest.raises(ProcessingError, match="no height"):
        sp.afm.analyse(afm_map([("Phase", z, "deg")], 1e-6))
    with pytest.raises(ParameterError, match="level"):
        sp.afm.analyse(afm_map([("Height", z, "m")], 1e-6), level="cubic")
    with pytest.raises(ParameterError):
        sp.afm.analyse(afm_map([("Height", z, "m")], 1e-6), channel="nope")
    E = np.full((32, 32), -1.0)
    with pytest.raises(SpecprocError, match="no valid modulus"):
        sp.afm.analyse(afm_map([("Modulus", E, "Pa")], 1e-6))
    with pytest.raises(ParameterError, match="compare_moduli"):
        sp.afm.compare_moduli("a", "b")


def test_cli_json(capsys):
    from specproc.cli import main

    code = main(["afm", str(SAMPLE / "Li_vs_LiBH4.gwy"), str(SAMPLE / "missing.gwy"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    e = out[0]
    assert set(["file", "sample", "channels", "roughness", "modulus", "protrusions", "warnings"]) <= set(e)
    assert set(["Sa_m", "Sq_m"]) <= set(e["roughness"])
    assert set(["mean_Pa", "median_Pa", "std_Pa", "n_valid", "n_invalid"]) <= set(e["modulus"])
    assert set(["count", "density_per_um2"]) <= set(e["protrusions"])
    assert "error" in out[1] and "force" not in e


class TestAnalyseMapContract(ProcessorContract):
    processor = "afm.analyse_map"
    params = {}

    def make_input(self):
        return sp.read(SAMPLE / "Li_vs_LiBH4.gwy")


def test_pipeline_afm_claims_get_verdicts_from_sample_data():
    """The pipeline's AFM measurements run on sample_data and both AFM claims are supported."""
    from specproc import plugins
    from specproc.evidence import evaluate_claims
    from specproc.pipeline.schema import load_pipeline

    pipe = load_pipeline(Path(__file__).resolve().parents[2] / "pipelines" / "libh4_linbh.yaml")
    tasks = [t for t in pipe.tasks if t.technique == "afm"]
    assert len(tasks) == 3
    results = []
    for t in tasks:
        m = sp.read(t.path)
        m.attrs["sample"] = t.sample
        results.append(plugins.get("processors", t.processor)(m, t.params))
    claims = [c for c in pipe.config.claims if c.id.startswith("afm_")]
    out = {o.claim_id if hasattr(o, "claim_id") else o.id: o for o in evaluate_claims(claims, results)}
    truth = json.loads((SAMPLE / "truth.json").read_text())
    ratio = out["afm_modulus_ratio"]
    assert ratio.verdict == "supported", ratio
    assert ratio.value == pytest.approx(truth["modulus_ratio"], rel=0.01)
    prot = out["afm_protrusions"]
    assert prot.verdict == "supported", prot
    assert prot.value == pytest.approx(truth["samples"]["LiBH4"]["protrusions"]["density_per_um2"], rel=1e-9)
