"""The shared technique toolkit: noise, peak picking, satellites, one-spectrum fits, propagation.

Every case is generated from random truths with noise; tolerances are a few standard errors.
"""
from __future__ import annotations

import numpy as np
import pytest

from specproc.core.errors import ParameterError
from specproc.fitting.components import gl_product
from specproc.fitting.lineshapes import PEAK_SHAPES, REGISTRY, area_of, evaluate
from specproc.fitting.models import ModelSpec, Peak, Satellite, parse_peaks
from specproc.fitting.fit import fit_spec
from specproc.fitting.noise import noise_sigma, smooth
from specproc.fitting.peaks import pick_peaks
from specproc.fitting.uncertainty import montecarlo


@pytest.mark.parametrize("sigma", [0.01, 1.0, 50.0])
def test_noise_sigma_white_and_correlated(sigma):
    rng = np.random.default_rng(int(sigma * 100))
    x = np.linspace(0, 100, 8000)
    sig = 200 * sigma * np.exp(-(x - 40) ** 2 / 2)
    white = rng.normal(0, sigma, x.size)
    assert noise_sigma(sig + white) == pytest.approx(sigma, rel=0.08)
    # correlated noise (smoothed white noise, as after apodization): the first-difference estimate
    # alone would be far too low; the shared estimate must stay within 15 % of the true SD
    k = np.exp(-np.arange(-10, 11) ** 2 / 8.0)
    corr = np.convolve(rng.normal(0, 1, x.size), k / np.sqrt(np.sum(k ** 2)), mode="same") * sigma
    assert noise_sigma(sig + corr) == pytest.approx(np.std(corr), rel=0.15)


def test_pick_peaks_both_axis_directions():
    rng = np.random.default_rng(7)
    for _ in range(5):
        c = np.sort(rng.uniform(10, 90, 3))
        while np.min(np.diff(c)) < 8:
            c = np.sort(rng.uniform(10, 90, 3))
        w = rng.uniform(0.5, 2.0, 3)
        h = rng.uniform(20, 100, 3)
        x = np.linspace(100, 0, 5000)       # decreasing, like a ppm axis
        y = sum(hh * np.exp(-(x - cc) ** 2 / (2 * (ww / 2.3548) ** 2)) for cc, ww, hh in zip(c, w, h))
        y = y + rng.normal(0, 1.0, x.size)
        got = pick_peaks(x, y, snr=5)
        assert len(got) == 3
        found = sorted(p["center"] for p in got)
        assert np.allclose(found, c, atol=0.05)
        fw = {round(p["center"]): p["fwhm"] for p in got}
        for cc, ww in zip(c, w):
            assert fw[round(cc)] == pytest.approx(ww, rel=0.2)
        assert pick_peaks(x[::-1], y[::-1], snr=5)[0]["center"] == pytest.approx(got[0]["center"])


def test_registry_names_once():
    assert set(PEAK_SHAPES) == set(REGISTRY)
    for name in PEAK_SHAPES:
        ls = REGISTRY[name]
        pars = ls.lmfit_model("a_").make_params()
        assert all("a_" + p in pars for p in ls.params), name


def test_gl_area_closed_form_matches_quadrature():
    v = {"height": 3.0, "fwhm": 1.7, "mixing": 0.4}
    x = np.linspace(-200, 200, 400001)
    from specproc.fitting.components import gl_sum

    assert area_of("gl-sum", v) == pytest.approx(np.trapezoid(gl_sum(x, 3.0, 0.0, 1.7, 0.4), x), rel=2e-3)
    assert area_of("gl-product", v) == pytest.approx(np.trapezoid(gl_product(x, 3.0, 0.0, 1.7, 0.4), x), rel=2e-3)


def test_spin_orbit_doublet_satellite_recovers_truth():
    """XPS-like doublet: splitting and 1:2 ratio fixed; centre, FWHM, area recovered within 4 sigma."""
    rng = np.random.default_rng(11)
    hits = 0
    for trial in range(6):
        c, w, h, split = rng.uniform(185, 190), rng.uniform(0.8, 1.6), rng.uniform(200, 1000), rng.uniform(0.5, 1.5)
        x = np.linspace(180, 196, 1200)
        y = gl_product(x, h, c, w, 0.3) + gl_product(x, 0.5 * h, c + split, w, 0.3) + 20 + 0.3 * (x - 180)
        y = y + rng.normal(0, 0.01 * h, x.size)
        spec = ModelSpec(peaks=[Peak(name="B 1s", shape="gl-product", center=c + rng.normal(0, 0.3), fwhm=1.2,
                                     satellites=[Satellite(name="1/2", offset=split, ratio=0.5)])], baseline="linear")
        out = fit_spec(spec, x, y)
        t = out.peak_table().iloc[0]
        assert not out.warnings, out.warnings
        assert t["n_satellites"] == 1
        assert abs(t["center"] - c) < 4 * t["center_stderr"] + 1e-4
        assert t["fwhm"] == pytest.approx(w, rel=0.02)
        true_area = 1.5 * area_of("gl-product", {"height": h, "fwhm": w, "mixing": 0.3})
        hits += abs(t["area"] - true_area) < 3 * t["area_stderr"]
    assert hits >= 5


def test_kalpha2_satellite_position_expression():
    rng = np.random.default_rng(5)
    r = 0.1544426 / 0.1540598
    for _ in range(4):
        c = rng.uniform(20, 110)
        c2 = 2 * np.degrees(np.arcsin(r * np.sin(np.radians(c / 2))))
        x = np.linspace(c - 2, c + 3, 2500)
        kw = dict(sigma=0.04, fraction=0.5)
        y = evaluate("pseudo-voigt", x, amplitude=10, center=c, **kw) + evaluate(
            "pseudo-voigt", x, amplitude=5, center=c2, **kw) + rng.normal(0, 0.3, x.size)
        sat = Satellite(name="Ka2", position=f"2*arcsin({r!r}*sin({{center}}*pi/360))*180/pi", ratio=0.5)
        out = fit_spec(ModelSpec(peaks=[Peak(name="hkl", center=c - 0.05, satellites=[sat])]), x, y)
        t = out.peak_table().iloc[0]
        assert abs(t["center"] - c) < 4 * t["center_stderr"]
        assert t["area"] == pytest.approx(15.0, rel=0.03)


def test_free_satellites_credit_area_to_parent():
    """Spinning-sideband-like satellites with free intensity: the parent's area includes them."""
    rng = np.random.default_rng(2)
    x = np.linspace(-150, 100, 5000)
    y = evaluate("gaussian", x, amplitude=100, center=-44, sigma=1.0)
    for k, a in ((-1, 10), (1, 15)):
        y = y + evaluate("gaussian", x, amplitude=a, center=-44 + 60 * k, sigma=1.0)
    y = y + rng.normal(0, 0.05, x.size)
    sats = [Satellite(name=f"ssb{'p' if k > 0 else 'm'}{abs(k)}", offset=60.0 * k) for k in (-1, 1)]
    out = fit_spec(ModelSpec(peaks=[Peak(name="BH4", shape="gaussian", center=-43.5, satellites=sats)]), x, y)
    t = out.peak_table().iloc[0]
    assert t["area"] == pytest.approx(125, rel=0.01)


def test_fit_spec_flags_parameter_at_bound_without_stderr():
    x = np.linspace(0, 100, 2000)
    # the line is at 45, the user's window stops at 42: the centre must end on its bound, flagged
    y = evaluate("gaussian", x, amplitude=10, center=45, sigma=2) + np.random.default_rng(1).normal(0, 0.01, x.size)
    out = fit_spec(ModelSpec(peaks=[Peak(name="a", shape="gaussian", center=40, bounds={"center": (38, 42)})]), x, y)
    assert any("a_center" in w and "bound" in w for w in out.warnings), out.warnings
    assert out.stderr["a_center"] is None
    t = out.peak_table().iloc[0]
    assert t["center_stderr"] is None and "a_center" in t["at_bound"]
    assert any("poor fit" in w or "structured residual" in w for w in out.warnings)


def test_fit_spec_errors_are_honest():
    """Truth within 2 sigma in about 95 % of trials (binomial bound for 40 trials)."""
    rng = np.random.default_rng(3)
    inside = 0
    n = 40
    x = np.linspace(0, 40, 800)
    for _ in range(n):
        c = rng.uniform(15, 25)
        y = evaluate("pseudo-voigt", x, amplitude=20, center=c, sigma=1.2, fraction=0.3) + rng.normal(0, 0.1, x.size)
        out = fit_spec(ModelSpec(peaks=[Peak(name="a", center=c + 0.5)]), x, y)
        inside += abs(out.values["a_center"] - c) < 2 * out.stderr["a_center"]
    assert inside >= 0.85 * n


def test_montecarlo_matches_covariance():
    rng = np.random.default_rng(9)
    x = np.linspace(0, 40, 600)
    y = evaluate("gaussian", x, amplitude=20, center=20, sigma=1.5) + rng.normal(0, 0.2, x.size)
    spec = ModelSpec(peaks=[Peak(name="a", shape="gaussian", center=20.3)])
    out = fit_spec(spec, x, y)
    sd, n_ok = montecarlo(lambda yy: [fit_spec(spec, x, yy, polish=False).values["a_center"]], out.best_fit,
                          out.residual, n=30, seed=1)
    assert n_ok == 30
    assert sd[0] == pytest.approx(out.stderr["a_center"], rel=0.5)


def test_parse_peaks_one_schema():
    got = parse_peaks({"BH4": -44.3, "Li": {"center": 0.0, "fwhm": 2.0}}, "gaussian")
    assert [p.name for p in got] == ["BH4", "Li"] and got[1].fwhm == 2.0 and got[0].shape == "gaussian"
    assert [p.name for p in parse_peaks([1.0, 2.0])] == ["p1", "p2"]
    with pytest.raises(ParameterError):
        parse_peaks([float("nan")])
    with pytest.raises(ParameterError):
        parse_peaks([{"center": 1.0, "shape": "nonsense"}])
    with pytest.raises(ParameterError):
        parse_peaks({"a": 1.0, "b": {"centre": 2.0}})


def test_smooth_keeps_length():
    y = np.random.default_rng(0).normal(size=1000)
    assert smooth(y).shape == y.shape and np.std(smooth(y)) < np.std(y)


def test_netcdf_round_trip_keeps_auxiliary_coordinates(tmp_path):
    """A force map's per-curve heights (a 3D coordinate) survive sp.save / sp.read."""
    import specproc as sp
    from specproc.core.measurement import new_measurement

    rng = np.random.default_rng(0)
    m = new_measurement(rng.random((2, 3, 5)), {"y": (np.arange(2) * 1e-7, "m"), "x": (np.arange(3) * 1e-7, "m"),
                                                 "point": (np.arange(5), "")}, technique="afm", units="N",
                        signal_type="force_volume")
    m = m.assign_coords(height=(("y", "x", "point"), rng.random((2, 3, 5)), {"units": "m"}))
    back = sp.read(sp.save(m, tmp_path / "f.nc"))
    assert back.coords["height"].attrs["units"] == "m"
    np.testing.assert_array_equal(back.coords["height"].values, m.coords["height"].values)
    np.testing.assert_array_equal(back.values, m.values)


def test_netcdf_built_with_xarray_alone(tmp_path):
    """docs/netcdf_layout.md: a file made with xarray only (no specproc) reads as a measurement."""
    import xarray as xr

    import specproc as sp
    from specproc.core.errors import ReaderError

    ds = xr.Dataset({"measurement": (("energy",), np.arange(10.0))},
                    coords={"energy": ("energy", np.linspace(180, 190, 10), {"units": "eV"})},
                    attrs={"specproc_layout": "specproc.measurement/1", "technique": "eels", "units": "counts",
                           "sample": "made by hand"})
    ds.to_netcdf(tmp_path / "a.nc", engine="h5netcdf")
    m = sp.read(tmp_path / "a.nc")
    assert m.attrs["technique"] == "eels" and m.attrs["sample"] == "made by hand"
    assert m.coords["energy"].attrs["units"] == "eV"
    ds.attrs.pop("technique")
    ds.to_netcdf(tmp_path / "b.nc", engine="h5netcdf")
    with pytest.raises(ReaderError, match="technique"):
        sp.read(tmp_path / "b.nc")
    (tmp_path / "c.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(ReaderError, match="c.nc"):
        sp.read(tmp_path / "c.nc")


def test_fast_median_is_numpys_median():
    from specproc.fitting.noise import _median

    rng = np.random.default_rng(11)
    for n in (1, 2, 3, 4, 5, 64, 4095, 4096):
        a = np.round(rng.normal(size=n), 2)      # ties included
        assert _median(a) == float(np.median(a))
        assert _median(a.copy()) == _median(a)   # the input is not reordered (partition copies)


def test_noise_estimate_is_not_fooled_by_a_sloped_baseline():
    """A baseline drifting by 100 noise SDs across the record is baseline, not noise (it gave 35x
    the true noise, and a clearly visible spectrum was refused as 'no signal')."""
    from specproc.fitting.lineshapes import pseudo_voigt
    from specproc.fitting.noise import noise_sigma

    rng = np.random.default_rng(21)
    x = np.linspace(60, -80, 4096)
    for sd in (0.003, 0.03):
        y = 0.002 * x + 0.05 + sd * rng.standard_normal(x.size)
        for c in (-41.0, -25.0, 23.5):
            y = y + pseudo_voigt(x, rng.uniform(0.5, 1.5), c, rng.uniform(0.8, 2.0), 0.5)
        assert noise_sigma(y) == pytest.approx(sd, rel=0.3)
        assert noise_sigma(y[::-1]) == pytest.approx(noise_sigma(y), rel=1e-9)
    white = rng.normal(0, 2.0, 5000)                       # flat baseline: unchanged estimate
    assert noise_sigma(white) == pytest.approx(2.0, rel=0.05)


def test_a_spectrum_on_a_sloped_baseline_is_fitted_not_refused(tmp_path):
    import specproc as sp
    from specproc.fitting.lineshapes import pseudo_voigt

    rng = np.random.default_rng(4)
    x = np.linspace(60, -80, 4096)
    truth = (-40.9, -25.1, 23.9)
    y = 0.002 * x + 0.05 + 0.003 * rng.standard_normal(x.size)
    for c in truth:
        y = y + pseudo_voigt(x, 1.0, c, 1.2, 0.5)
    f = tmp_path / "sloped.csv"
    np.savetxt(f, np.column_stack([x, y]), delimiter=",", header="# nucleus: 11B\nppm,intensity", comments="")
    r = sp.nmr.deconvolve(sp.read(f), {"a": -41.0, "b": -25.0, "c": 23.5}, baseline="linear")
    got = r.table.set_index("name")["center_ppm"]
    for name, c in zip("abc", truth):
        assert got[name] == pytest.approx(c, abs=0.02)
    assert r.meta["noise"] == pytest.approx(0.003, rel=0.3)


def test_on_bound_same_rule_for_one_fit_and_a_stack():
    """at_bound (one fit's Parameters) and on_bound on columns (a stack) are one rule: within
    1e-4 of the range of a finite bound; an infinite bound is never hit."""
    from types import SimpleNamespace

    from specproc.fitting.uncertainty import at_bound, on_bound

    lo, hi = -2.0, 6.0
    v = np.array([-2.0, -2.0 + 7e-4, -2.0 + 9e-4, 1.0, 6.0 - 5e-4, 6.0, 7.0])
    want = [True, True, False, False, True, True, True]
    assert on_bound(v, lo, hi).tolist() == want
    for val, w in zip(v, want):
        p = {"a": SimpleNamespace(value=val, min=lo, max=hi, vary=True, expr=None)}
        assert (at_bound(p) == ["a"]) is w and on_bound(val, lo, hi) is w
    assert on_bound(v, -np.inf, np.inf).tolist() == [False] * v.size   # no finite bound: an array, all False
    assert on_bound(np.array([0.0, 5e-5, 1.0]), 0.0, np.inf).tolist() == [True, True, False]


def test_area_and_fwhm_of_take_columns():
    """The derived quantities of a stack are computed on columns with the same numbers as one by one."""
    from specproc.fitting.lineshapes import area_of, fwhm_of

    rng = np.random.default_rng(4)
    cols = {"p_amplitude": rng.uniform(1, 2, 5), "p_sigma": rng.uniform(0.5, 2, 5), "p_gamma": rng.uniform(0.1, 1, 5),
            "p_height": rng.uniform(1, 2, 5), "p_fwhm": rng.uniform(1, 2, 5), "p_mixing": rng.uniform(0, 1, 5)}
    for shape in ("gaussian", "voigt", "gl-sum", "gl-product"):
        for f in (area_of, fwhm_of):
            col = f(shape, cols, "p_")
            one = [f(shape, {k: float(v[i]) for k, v in cols.items()}, "p_") for i in range(5)]
            assert isinstance(one[0], float)
            np.testing.assert_allclose(col, one, rtol=1e-12)


def test_toolkit_in_threads_leaves_warning_filters_alone(monkeypatch):
    """Peak picking, widths and fits run in the executor's threads: they must not swap or edit the
    process-wide warning filters (two overlapping swaps restore in the wrong order: another
    thread's warnings are lost, or every warning of the process stays ignored), scipy's
    PeakPropertyWarning must not reach the user, and 8 threads give the serial results."""
    import threading
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    from specproc.fitting.models import prefix_of
    from specproc.fitting.peaks import width_at

    rng = np.random.default_rng(11)
    x = np.linspace(0, 100, 4001)
    cases = []
    for _ in range(12):
        c = rng.uniform(20, 80)
        cases.append((c, 10 * np.exp(-(x - c) ** 2 / 8) + rng.normal(0, 0.2, x.size)))

    def work(case):
        c, y = case
        picked = pick_peaks(x, y, max_peaks=3)
        w = width_at(x, y, x[5])  # no maximum there: the fallback width, and no scipy warning
        fit = fit_spec(ModelSpec(peaks=[Peak(name="p", shape="gaussian", center=picked[0]["center"],
                                             fwhm=picked[0]["fwhm"])]), x, y)
        return picked[0]["center"], w, fit.values[prefix_of("p") + "center"]

    serial = [work(cs) for cs in cases]
    for (c, _), (pc, _, fc) in zip(cases, serial):
        assert abs(fc - c) < 0.05 and abs(pc - c) < 0.5
    touched = []
    for name in ("catch_warnings", "simplefilter", "filterwarnings", "resetwarnings"):
        real = getattr(warnings, name)

        def spy(*a, _real=real, _name=name, **k):
            if threading.current_thread() is not threading.main_thread():
                touched.append(_name)
            return _real(*a, **k)
        monkeypatch.setattr(warnings, name, spy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ThreadPoolExecutor(8) as pool:
            threaded = list(pool.map(work, cases * 2))
    assert not touched, f"worker threads edited the process-wide warning filters: {sorted(set(touched))}"
    assert not [w for w in caught if "peak" in str(w.message).lower()], "scipy's PeakPropertyWarning reached the user"
    assert threaded == serial * 2
