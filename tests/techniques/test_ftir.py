"""FTIR band fitting: recovery from random truths (CO2 doublet overlapping), honest errors,
shifts, batch = single fits, saturation, transmittance input, atmosphere never a band, bad input."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ParameterError, ProcessingError, SpecprocError
from specproc.core.measurement import new_measurement

sys.path.insert(0, str(Path(__file__).parent))
from _ftir_synth import measurement as _m  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gen(ftir_generator):
    return ftir_generator


def _random_band(rng, lo=2265.0, hi=2295.0):
    h = rng.uniform(0.3, 0.6)
    return {"name": "BH", "center": rng.uniform(lo, hi), "fwhm": rng.uniform(35, 60), "height": h,
            "fraction": rng.uniform(0.0, 0.6)}


def _spectrum(gen, rng, band, snr=200.0, extra=()):
    co2 = rng.uniform(0.03, 0.12) * rng.choice([-1.0, 1.0])       # background CO2 can be more or less
    y, parts = gen.synth([band, *extra], baseline=(rng.uniform(0, 0.1), rng.uniform(-2e-5, 3e-5), 0.0),
                         co2_amount=co2, water_amount=0.02, noise=band["height"] / snr,
                         seed=int(rng.integers(2**31)))
    return y


def _recovery(gen, rng, n, lo, hi, **kw):
    errs, z, modelled = [], {"center": [], "fwhm": [], "area": []}, []
    for _ in range(n):
        b = _random_band(rng, lo, hi)
        m = _m(gen, _spectrum(gen, rng, b))
        r = sp.ftir.fit_bands(m, {"BH": b["center"] + rng.uniform(-8, 8)}, region=(2100, 2500), **kw)
        assert any("CO2 2337/2361" in w for w in r.warnings)
        assert set(r.table["name"]) == {"BH"}                     # CO2 is never a sample band
        modelled.append(bool(r.meta.get("co2_model")))
        q = r.quantities
        errs.append(q["BH.center_cm1"].value - b["center"])
        truth = {"center": b["center"], "fwhm": b["fwhm"], "area": gen.pv_area(b["fwhm"], b["height"], b["fraction"])}
        for k, key in (("center", "BH.center_cm1"), ("fwhm", "BH.fwhm_cm1"), ("area", "BH.area")):
            assert q[key].stderr is not None and q[key].stderr > 0
            z[k].append((q[key].value - truth[k]) / q[key].stderr)
    return np.abs(errs), {k: np.abs(v) for k, v in z.items()}, np.array(modelled)


def _honest(errs, z):
    assert np.mean(errs < 0.5) >= 0.95 and errs.max() < 1.0, errs
    for k, v in z.items():
        assert np.mean(v < 3) >= 0.95, (k, v)
        assert np.median(v) < 1.5, (k, v)          # errors not grossly inflated either


def test_recovery_band_under_the_co2_doublet(gen):
    """SNR 200, band centre 2280-2340 cm-1 (under the 2337/2361 doublet, random strength and sign):
    CO2 is modelled (envelope of its lines in the shared ModelSpec), centres within 0.5 cm-1, truth
    within 3 sigma in >= 95 % of trials (centre, FWHM, area). 40-trial runs: docs/ftir.md."""
    errs, z, modelled = _recovery(gen, np.random.default_rng(20261130), 24, 2280.0, 2340.0)
    assert modelled.all()
    _honest(errs, z)


def test_recovery_band_below_the_doublet_masked(gen):
    """atmosphere='mask' (the previous behaviour, kept as an option): bands below 2300 cm-1 fitted
    with the doublet masked are recovered too."""
    errs, z, modelled = _recovery(gen, np.random.default_rng(5), 20, 2265.0, 2290.0, atmosphere="mask")
    assert not modelled.any()
    # masked, the band's upper half is missing: centres and their errors hold, FWHM z-scores run a
    # little wide (2 of 20 at 3.0-3.1 sigma here) -- one reason the default models CO2 instead
    _honest(errs, {"center": z["center"], "area": z["area"]})
    assert np.mean(z["fwhm"] < 3.5) >= 0.95


def test_unrecognised_co2_under_a_band_is_modelled_anyway(gen):
    """At 8 cm-1 resolution a weak doublet (0.03-0.05) escapes the second-derivative recognition;
    a band under it still gets CO2 modelled (free intensity), so it is not silently biased."""
    rng = np.random.default_rng(31)
    errs, z = [], []
    for _ in range(12):
        b = _random_band(rng, 2285, 2340)
        co2 = rng.uniform(0.03, 0.05) * rng.choice([-1.0, 1.0])
        y, _ = gen.synth([b], co2_amount=co2, noise=b["height"] / 200, seed=int(rng.integers(2**31)), resolution=8.0)
        r = sp.ftir.fit_bands(_m(gen, y, res=8.0), {"BH": b["center"] + rng.uniform(-5, 5)}, region=(2100, 2500))
        assert r.meta.get("co2_model") and set(r.table["name"]) == {"BH"}
        q = r.quantities["BH.center_cm1"]
        errs.append(abs(q.value - b["center"]))
        z.append(abs(q.value - b["center"]) / q.stderr)
    assert max(errs) < 0.5 and np.mean(np.array(z) < 3) >= 11 / 12, (errs, z)
    # no CO2 at all: modelled with an intensity ~0, no false "CO2 found" warning
    y0, _ = gen.synth([_random_band(rng, 2300, 2330)], noise=0.002, seed=3)
    r0 = sp.ftir.fit_bands(_m(gen, y0), {"BH": 2315}, region=(2100, 2500))
    assert r0.tables["atmosphere"]["recognised"][0] is np.False_ or not r0.tables["atmosphere"]["recognised"][0]
    assert not any("finds" in w for w in r0.warnings)


def test_co2_model_table_plot_and_json(gen):
    from specproc.techniques.ftir.cli import entry

    band = {"name": "b", "center": 2330.0, "fwhm": 45.0, "height": 0.4, "fraction": 0.3}
    y, _ = gen.synth([band], co2_amount=-0.08, noise=0.002, seed=21)
    r = sp.ftir.fit_bands(_m(gen, y), region=(2050, 2550))           # automatic: found under the doublet
    assert list(r.table["name"]) == ["band_2330"] and r.table["center_cm1"][0] == pytest.approx(2330, abs=0.3)
    atm = r.tables["atmosphere"]
    assert list(atm["component"]) == ["CO2 2337/2361"]
    assert atm["peak_absorbance"][0] == pytest.approx(-0.08, abs=0.01)
    assert not any(k.startswith("atm_") for k in r.quantities)
    names = [s["name"] for s in r.plots[0]["series"]]
    assert "CO2 2337/2361 (atmosphere, modelled)" in names
    assert any("(modelled)" in s["label"] for s in r.plots[0]["shade"])
    e = entry(r, "x.jdx")
    assert e["masked_cm1"] == [] and e["atmosphere_modelled"][0]["component"] == "CO2 2337/2361"
    # resolved rotational lines (1 cm-1 resolution): an envelope would be wrong -> masked, said so
    x1 = np.arange(2000.0, 2600.0, 0.25)
    y1, _ = gen.synth([band], x=x1, co2_amount=0.08, noise=0.002, seed=22, resolution=1.0)
    r1 = sp.ftir.fit_bands(_m(gen, y1, res=1.0, x=x1), {"b": 2325}, region=(2100, 2500))
    assert not r1.meta.get("co2_model") and any("rotational lines resolved" in w for w in r1.warnings)


def test_shift_recovered_with_uncertainty(gen):
    rng = np.random.default_rng(7)
    z = []
    for _ in range(10):
        a = _random_band(rng, 2285, 2300)
        shift = rng.uniform(5, 25)
        b = dict(a, center=a["center"] - shift, fwhm=a["fwhm"] * rng.uniform(0.9, 1.2))
        ra = sp.ftir.fit_bands(_m(gen, _spectrum(gen, rng, a), sample="ref"), {"BH": 2290}, region=(2100, 2500))
        rb = sp.ftir.fit_bands(_m(gen, _spectrum(gen, rng, b), sample="conf"), {"BH": 2275}, region=(2100, 2500))
        c = sp.ftir.compare(ra, rb, "BH")
        assert c.unit == "cm-1" and c.stderr is not None
        assert c.value == pytest.approx(-shift, abs=1.0)
        z.append((c.value + shift) / c.stderr)
    assert np.mean(np.abs(z) < 3) >= 0.9, z


def test_batch_matches_single_fits(gen):
    rng = np.random.default_rng(3)
    ms = [_m(gen, _spectrum(gen, rng, _random_band(rng)), sample=f"s{i}") for i in range(4)]
    ms.append("not a measurement")
    bands = {"BH": 2280}
    out = sp.ftir.fit_bands(ms, bands, region=(2100, 2500))
    assert isinstance(out, list) and len(out) == 5 and isinstance(out[-1], SpecprocError)
    assert out[0].stats["method"] == "batched-lm"
    for m, r in zip(ms[:4], out[:4]):
        one = sp.ftir.fit_bands(m, bands, region=(2100, 2500))
        # the stack is fitted on the points unmasked in every spectrum: same answer within errors
        assert r.quantities["BH.center_cm1"].value == pytest.approx(one.quantities["BH.center_cm1"].value,
                                                                    abs=2 * one.quantities["BH.center_cm1"].stderr)
        assert r.quantities["BH.height"].stderr is not None


def test_transmittance_input_same_bands(gen):
    rng = np.random.default_rng(11)
    b = _random_band(rng)
    y = _spectrum(gen, rng, b)
    ra = sp.ftir.fit_bands(_m(gen, y), {"BH": 2280}, region=(2100, 2500))
    rt = sp.ftir.fit_bands(_m(gen, 10 ** -y, kind="transmittance"), {"BH": 2280}, region=(2100, 2500))
    assert rt.meta["y_kind"] == "transmittance" and any("converted from transmittance" in w for w in rt.warnings)
    assert rt.quantities["BH.center_cm1"].value == pytest.approx(ra.quantities["BH.center_cm1"].value, abs=1e-6)


def test_saturated_band_excluded_with_warning(gen):
    rng = np.random.default_rng(5)
    band = {"name": "S", "center": 1450.0, "fwhm": 40.0, "height": 4.0, "fraction": 0.2}
    y, _ = gen.synth([band], noise=0.002, seed=3)
    y = np.minimum(y, 3.0)                     # detector limit: flat top
    r = sp.ftir.fit_bands(_m(gen, y), {"S": 1450}, region=(1300, 1600), shape="pseudo-voigt")
    assert any("saturated band" in w for w in r.warnings)
    assert r.meta["saturated_cm1"] and r.plots[0]["shade"]
    # fitted on the flanks, the band's true height (4, above the clip) is recovered, not 3
    assert r.quantities["S.height"].value > 3.3
    assert r.quantities["S.center_cm1"].value == pytest.approx(1450, abs=1.0)
    t = 10 ** -np.minimum(y, 6)
    t[np.abs(gen.GRID - 1450) < 5] = -0.001     # transmittance <= 0 at the band centre
    r2 = sp.ftir.fit_bands(_m(gen, t, kind="transmittance"), {"S": 1450}, region=(1300, 1600))
    assert any("transmittance <= 0" in w for w in r2.warnings)
    del rng


def test_atmosphere_never_reported_as_bands(gen):
    rng = np.random.default_rng(9)
    band = {"name": "far", "center": 2180.0, "fwhm": 45.0, "height": 0.4, "fraction": 0.3}
    y, _ = gen.synth([band], co2_amount=0.15, water_amount=0.08, noise=0.002, seed=int(rng.integers(1000)))
    r = sp.ftir.fit_bands(_m(gen, y), region=(2050, 2500))       # automatic bands
    centres = [q.value for k, q in r.quantities.items() if k.endswith("center_cm1")]
    assert len(centres) == 1 and centres[0] == pytest.approx(2180, abs=1.0)
    assert any("CO2 2337/2361" in w for w in r.warnings)
    # water region: only the sample band, not the vapour lines
    band2 = {"name": "NH", "center": 1560.0, "fwhm": 30.0, "height": 0.3, "fraction": 0.3}
    # vapour recognised by its line pattern (>= 4 lines in each branch): at 0.08 only 4 lines of it
    # stand 5 noise SDs above the high-passed noise, which no pattern tells from 4 sample bands
    y2, _ = gen.synth([band2], water_amount=0.2, noise=0.002, seed=4)
    r2 = sp.ftir.fit_bands(_m(gen, y2), region=(1400, 1750))
    centres2 = [q.value for k, q in r2.quantities.items() if k.endswith("center_cm1")]
    assert len(centres2) == 1 and centres2[0] == pytest.approx(1560, abs=1.0), r2.table
    assert any("water vapour" in w for w in r2.warnings)
    # a clean spectrum has no atmospheric warning
    y3, _ = gen.synth([band], noise=0.002, seed=5)
    r3 = sp.ftir.fit_bands(_m(gen, y3), region=(2050, 2500))
    assert not any("atmospheric" in w for w in r3.warnings)


def test_auto_bands_and_cross_checks(gen):
    bands = [{"name": "a", "center": 3250.0, "fwhm": 40.0, "height": 0.25, "fraction": 0.3},
             {"name": "b", "center": 3312.0, "fwhm": 34.0, "height": 0.3, "fraction": 0.3}]
    y, _ = gen.synth(bands, noise=0.0015, seed=8)
    r = sp.ftir.fit_bands(_m(gen, y), region=(3100, 3450))
    t = r.table
    assert len(t) == 2 and all(n.startswith("band_") for n in t["name"])    # named by found position
    assert np.allclose(t["center_cm1"], [3250, 3312], atol=0.5)
    assert np.allclose(t["max_cm1"], t["center_cm1"], atol=1.5)
    assert np.allclose(t["centroid_cm1"], t["center_cm1"], atol=1.5)
    assert set(t.columns) >= {"fwhm_cm1_stderr", "height_stderr", "area_stderr", "area_height_ratio", "noise_rms"}
    r1 = sp.ftir.fit_bands(_m(gen, y), region=(3100, 3450), n_peaks=1)
    assert len(r1.table) == 1


@pytest.mark.parametrize("baseline", ["asls", "arpls", "modpoly", "rubberband", "quadratic"])
def test_baselines(gen, baseline):
    b = {"name": "B", "center": 1124.0, "fwhm": 34.0, "height": 0.5, "fraction": 0.3}
    y, _ = gen.synth([b], baseline=(0.05, 4e-5, 2e-8), noise=0.002, seed=2)
    r = sp.ftir.fit_bands(_m(gen, y), {"B": 1120}, region=(950, 1300), baseline=baseline)
    assert r.quantities["B.center_cm1"].value == pytest.approx(1124, abs=1.0)
    # pybaselines estimates eat part of the Lorentzian wings; the in-model polynomial does not
    tol = 0.03 if baseline == "quadratic" else 0.12
    assert r.quantities["B.area"].value == pytest.approx(gen.pv_area(34, 0.5, 0.3), rel=tol)
    assert (baseline == "quadratic") != any("pybaselines" in w for w in r.warnings)


def test_absent_band_and_bounds_flagged(gen):
    y, _ = gen.synth([{"name": "x", "center": 1400.0, "fwhm": 100, "height": 0.3}], noise=0.002, seed=1)
    r = sp.ftir.fit_bands(_m(gen, y), {"BH": 2300}, region=(2100, 2500))
    assert any("band absent" in w or "at a bound" in w for w in r.warnings)
    assert r.quantities["BH.center_cm1"].stderr is None


def test_bad_input(gen):
    y, _ = gen.synth([{"name": "x", "center": 1400.0, "fwhm": 50, "height": 0.3}], noise=0.002, seed=1)
    m = _m(gen, y)
    with pytest.raises(ParameterError):
        sp.ftir.fit_bands(m, region=(1000, 1000))
    with pytest.raises(ParameterError):
        sp.ftir.fit_bands(m, baseline="magic")
    with pytest.raises(ParameterError, match="outside the region"):
        sp.ftir.fit_bands(m, {"a": 3000}, region=(1300, 1500))
    with pytest.raises(ProcessingError, match="points"):
        sp.ftir.fit_bands(m, region=(5000, 6000))
    flat = _m(gen, np.random.default_rng(0).normal(0, 0.001, gen.GRID.size))
    with pytest.raises(ProcessingError, match="no band"):
        sp.ftir.fit_bands(flat, region=(1000, 1500))
    sc = new_measurement(y, [("wavenumber", gen.GRID, "1/cm")], technique="ftir",
                         acquisition={"y_kind": "single_channel"})
    with pytest.raises(ProcessingError, match="single_channel"):
        sp.ftir.fit_bands(sc)
    nmr = new_measurement(y, [("shift", gen.GRID, "ppm")], technique="nmr")
    with pytest.raises(ParameterError, match="nmr measurement"):
        sp.ftir.fit_bands(nmr)
    with pytest.raises(SpecprocError):
        new_measurement(np.r_[y[:-1], np.nan], [("wavenumber", gen.GRID, "1/cm")], technique="ftir")


def test_result_serialises_and_renders(gen, tmp_path):
    import json

    y, _ = gen.synth([{"name": "x", "center": 2290.0, "fwhm": 50, "height": 0.4}], co2_amount=0.08, noise=0.002,
                     seed=1)
    r = sp.ftir.fit_bands(_m(gen, y, sample="S"), {"BH": 2290}, region=(2100, 2500))
    d = json.loads(r.to_json(plots=True))
    assert d["quantities"]["BH.center_cm1"]["unit"] == "cm-1"
    assert d["plots"][0]["shade"] and "BH" in r._repr_html_()
    from specproc.techniques.ftir import report_section

    r2 = sp.ftir.fit_bands(_m(gen, y, sample="T"), {"BH": 2290}, region=(2100, 2500))
    sec = report_section([r, r2])
    assert sec.technique == "ftir" and any("shifts" in c for c, _ in sec.tables)
    # two results of one sample are not a comparison (the report compares samples)
    assert not any("shifts" in c for c, _ in report_section([r, r]).tables)
    from specproc.report import render_results

    out = render_results([r], tmp_path / "r.html", title="t")
    assert Path(out).stat().st_size > 1000


def test_compare_baselines_side_by_side(gen, tmp_path):
    """compare_baseline: the same bands under a second baseline, differences tabulated, both plots,
    a warning where the baseline (not noise) decides the area; in the report and the CLI JSON."""
    rng = np.random.default_rng(17)
    b = {"name": "B", "center": rng.uniform(1100, 1150), "fwhm": rng.uniform(30, 45), "height": 0.5,
         "fraction": rng.uniform(0.3, 0.6)}
    y, _ = gen.synth([b], baseline=(0.05, 4e-5, 2e-8), noise=0.002, seed=int(rng.integers(1000)))
    truth = gen.pv_area(b["fwhm"], b["height"], b["fraction"])
    r = sp.ftir.fit_bands(_m(gen, y, sample="S"), {"B": 1125}, region=(950, 1300), compare_baseline="asls")
    t = r.tables["baseline_comparison"]
    assert list(t["name"]) == ["B"] and t["baseline"][0] == "linear" and t["baseline_2"][0] == "asls"
    # the in-model linear baseline keeps the Lorentzian wings; asls eats part of them (area lower)
    assert t["area"][0] == pytest.approx(truth, rel=0.03) and t["area_2"][0] < t["area"][0]
    assert t["delta_area_pct"][0] == pytest.approx(100 * (t["area_2"][0] / t["area"][0] - 1))
    assert abs(t["delta_center_cm1"][0]) < 0.5
    assert any("area depends on the baseline" in w for w in r.warnings)
    assert len(r.plots) == 2 and r.plots[1]["title"].endswith("(baseline asls)")
    assert r.params["compare_baseline"] == "asls"
    # automatic bands: the second fit starts from the first fit's bands, same names
    ra = sp.ftir.fit_bands(_m(gen, y), region=(950, 1300), baseline="rubberband", compare_baseline="linear")
    assert list(ra.tables["baseline_comparison"]["name"]) == list(ra.table["name"])
    from specproc.techniques.ftir import report_section
    from specproc.techniques.ftir.cli import entry

    sec = report_section([r])
    assert any(c.startswith("FTIR: baseline comparison") for c, _ in sec.tables) and len(sec.plots) == 2
    assert entry(r, "s.jdx")["baseline_comparison"][0]["baseline_2"] == "asls"
    with pytest.raises(ParameterError):
        sp.ftir.fit_bands(_m(gen, y), {"B": 1125}, baseline="asls", compare_baseline="asls")
