"""Batch fitting engine: agreement with lmfit on the same data and starting values, known truth.

Tolerances (from the engine's contract): centres within 1e-3 axis units, areas within 0.1 %,
standard errors within 5 % of lmfit's.
"""
from __future__ import annotations

import numpy as np
import pytest

lmfit = pytest.importorskip("lmfit")
xr = pytest.importorskip("xarray")

from lmfit.models import (ConstantModel, ExponentialModel, GaussianModel, LinearModel, LorentzianModel,  # noqa: E402
                          Pearson7Model, PowerLawModel, PseudoVoigtModel, VoigtModel)

from specproc.core.errors import FitError, ParameterError  # noqa: E402
from specproc.fitting import components as C  # noqa: E402
from specproc.fitting.batch import evaluate_batch, fit_batch  # noqa: E402
from specproc.fitting.models import Link, ModelSpec, Peak  # noqa: E402

RNG = np.random.default_rng(20240601)


def make_stack(model, x, truth, n, jitter, noise, rng=RNG):
    """n datasets of ``model`` with per-dataset jitter of the given params and Gaussian noise."""
    Y = np.empty((n, x.size))
    vals = {k: np.full(n, float(v)) for k, v in truth.items()}
    for k, s in jitter.items():
        vals[k] = vals[k] + rng.normal(0, s, n)
    for i in range(n):
        Y[i] = model.eval(x=x, **{k: v[i] for k, v in vals.items()})
    return Y + rng.normal(0, noise, Y.shape), vals


def compare_with_lmfit(model, params, x, Y, ds, idx, names, area_names=(), center_names=(), se=True):
    for i in idx:
        r = model.fit(Y[i], params.copy(), x=x)
        assert r.success
        assert bool(ds.success.values.reshape(-1)[i])
        for nm in center_names:
            assert abs(float(ds[nm].values.reshape(-1)[i]) - r.params[nm].value) < 1e-3, nm
        for nm in area_names:
            assert float(ds[nm].values.reshape(-1)[i]) == pytest.approx(r.params[nm].value, rel=1e-3), nm
        for nm in names:
            assert float(ds[nm].values.reshape(-1)[i]) == pytest.approx(r.params[nm].value, rel=1e-3, abs=1e-6), nm
            if se and r.params[nm].stderr and r.params[nm].vary:
                assert float(ds[nm + "_stderr"].values.reshape(-1)[i]) == pytest.approx(r.params[nm].stderr,
                                                                                         rel=0.05), nm
        assert float(ds.chisqr.values.reshape(-1)[i]) == pytest.approx(r.chisqr, rel=1e-5)
        assert float(ds.r2.values.reshape(-1)[i]) == pytest.approx(r.rsquared, rel=1e-6)


SHAPES = [
    (GaussianModel, {}, {}),
    (LorentzianModel, {}, {}),
    (PseudoVoigtModel, {"fraction": 0.4}, {"fraction": (0, 1)}),
    (VoigtModel, {"gamma": 0.3}, {"gamma": (0, 5)}),
    (Pearson7Model, {"expon": 1.8}, {"expon": (0.6, 50)}),
]


@pytest.mark.parametrize("cls,extra,bounds", SHAPES, ids=[s[0].__name__ for s in SHAPES])
def test_lineshapes_agree_with_lmfit(cls, extra, bounds):
    x = np.linspace(-5, 15, 600)
    model = cls(prefix="a_") + cls(prefix="b_") + ConstantModel(prefix="bl_")
    truth = {"a_amplitude": 10.0, "a_center": 3.0, "a_sigma": 0.6, "b_amplitude": 6.0, "b_center": 7.5,
             "b_sigma": 0.9, "bl_c": 0.3}
    for pre in ("a_", "b_"):
        truth.update({pre + k: v for k, v in extra.items()})
    Y, _ = make_stack(model, x, truth, 12, {"a_center": 0.1, "b_amplitude": 0.5}, 0.03)
    params = model.make_params(**{k: v * 1.07 if "center" not in k else v + 0.15 for k, v in truth.items()})
    for pre in ("a_", "b_"):
        params[pre + "sigma"].set(min=0)
        for k, (lo, hi) in bounds.items():
            params[pre + k].set(min=lo, max=hi)
        if cls is VoigtModel:
            params[pre + "gamma"].set(vary=True, expr="")
    ds = fit_batch(model, x, Y, params=params)
    assert ds.attrs["method"] == "batched-lm"
    assert bool(ds.success.all()) and ds.attrs["n_failed"] == 0
    compare_with_lmfit(model, params, x, Y, ds, [0, 5, 11], names=list(truth),
                       area_names=["a_amplitude", "b_amplitude"], center_names=["a_center", "b_center"])
    # derived lmfit parameters are reported too
    r = model.fit(Y[0], params.copy(), x=x)
    for d in ("a_fwhm", "a_height"):
        assert float(ds[d][0]) == pytest.approx(r.params[d].value, rel=1e-3)
        assert float(ds[d + "_stderr"][0]) == pytest.approx(r.params[d].stderr, rel=0.05)


@pytest.mark.parametrize("cls", [C.GLProductModel, C.GLSumModel])
def test_gl_components_agree_with_lmfit(cls):
    x = np.linspace(280, 295, 500)  # binding energy, eV
    model = cls(prefix="c1_") + cls(prefix="c2_") + LinearModel(prefix="bl_")
    truth = {"c1_height": 1000.0, "c1_center": 284.8, "c1_fwhm": 1.1, "c1_mixing": 0.3, "c2_height": 400.0,
             "c2_center": 286.4, "c2_fwhm": 1.3, "c2_mixing": 0.3, "bl_slope": 2.0, "bl_intercept": -500.0}
    Y, _ = make_stack(model, x, truth, 6, {"c1_center": 0.05}, 5.0)
    params = model.make_params(**{k: v * 1.05 if "center" not in k else v + 0.1 for k, v in truth.items()})
    ds = fit_batch(model, x, Y, params=params)
    assert ds.attrs["method"] == "batched-lm" and bool(ds.success.all())
    compare_with_lmfit(model, params, x, Y, ds, [0, 3], names=[k for k in truth if "bl_" not in k],
                       center_names=["c1_center", "c2_center"])
    if cls is C.GLSumModel:
        # closed-form area of the SGL form against numerical integration
        from scipy.integrate import quad

        area = sum(quad(lambda e: C.gl_sum(e, 1000.0, 284.8, 1.1, 0.3), a, b, limit=200)[0]
                   for a, b in ((-np.inf, 280), (280, 290), (290, np.inf)))
        p = model.make_params(**truth)
        assert p["c1_area"].value == pytest.approx(area, rel=1e-6)


def test_bounds_active_fixed_and_linked():
    x = np.linspace(0, 20, 800)
    model = PseudoVoigtModel(prefix="a_") + PseudoVoigtModel(prefix="b_")
    truth = {"a_amplitude": 10.0, "a_center": 8.0, "a_sigma": 0.5, "a_fraction": 0.6, "b_amplitude": 5.0,
             "b_center": 11.0, "b_sigma": 0.5, "b_fraction": 0.6}
    Y, _ = make_stack(model, x, truth, 8, {"a_center": 0.1}, 0.02)
    params = model.make_params(a_amplitude=9, a_center=8.2, a_sigma=0.6, a_fraction=0.5, b_amplitude=4,
                               b_center=11.2, b_sigma=0.6, b_fraction=0.6)
    params["a_fraction"].set(min=0, max=0.3)  # truth 0.6 -> the bound is active
    params["b_fraction"].set(vary=False)  # fixed at 0.6
    params["b_sigma"].set(expr="a_sigma")  # "b_sigma = a_sigma"
    params["b_center"].set(expr="a_center + 3.0")  # "x = y + const"
    params["b_amplitude"].set(expr="0.5*a_amplitude")  # "x = k*y"
    ds = fit_batch(model, x, Y, params=params)
    assert ds.attrs["method"] == "batched-lm" and bool(ds.success.all())
    np.testing.assert_allclose(ds.a_fraction, 0.3)  # pinned at the upper bound
    np.testing.assert_allclose(ds.b_sigma, ds.a_sigma)
    np.testing.assert_allclose(ds.b_center, ds.a_center + 3.0)
    np.testing.assert_allclose(ds.b_amplitude, 0.5 * ds.a_amplitude)
    np.testing.assert_allclose(ds.b_fraction, 0.6)
    for i in (0, 4):
        # lmfit's default (leastsq + sine transform) stalls next to an active bound; its
        # least_squares method (scipy TRF, native bounds) reaches the constrained minimum
        r = model.fit(Y[i], params.copy(), x=x, method="least_squares")
        assert float(ds.chisqr[i]) <= r.chisqr * (1 + 1e-7)
        for nm in ("a_center", "b_center"):
            assert abs(float(ds[nm][i]) - r.params[nm].value) < 1e-3
        for nm in ("a_amplitude", "b_amplitude", "a_sigma"):
            assert float(ds[nm][i]) == pytest.approx(r.params[nm].value, rel=1e-3)
        assert float(ds.a_fraction[i]) == pytest.approx(r.params["a_fraction"].value, abs=1e-4)
        # linked parameters get propagated standard errors like lmfit's
        assert float(ds.b_amplitude_stderr[i]) == pytest.approx(0.5 * float(ds.a_amplitude_stderr[i]), rel=1e-4)
    # no active bound: fixed + linked parameters agree with lmfit's default solver, stderr included
    params["a_fraction"].set(max=1)
    ds = fit_batch(model, x, Y[:3], params=params)
    compare_with_lmfit(model, params, x, Y, ds, [0, 2], names=["a_amplitude", "a_sigma", "a_fraction",
                                                               "b_amplitude", "b_sigma", "b_center"],
                       center_names=["a_center", "b_center"])


def test_modelspec_input_and_per_dataset_init():
    x = np.linspace(-60, -30, 700)  # ppm
    spec = ModelSpec(peaks=[Peak(name="BH4", shape="gaussian", center=-41.0, fwhm=1.5),
                            Peak(name="BH4 b", shape="gaussian", center=-38.0, fwhm=1.5)],
                     baseline="linear", links=[Link(param="sigma", peaks=["BH4", "BH4 b"])])
    model, _ = spec.to_lmfit(x, None)
    truth = {"BH4_amplitude": 20.0, "BH4_center": -41.3, "BH4_sigma": 0.7, "BH4_b_amplitude": 8.0,
             "BH4_b_center": -38.2, "BH4_b_sigma": 0.7, "bl_c0": 0.1, "bl_c1": 0.0}
    Y, vals = make_stack(model, x, truth, 10, {"BH4_center": 0.2}, 0.02)
    ds = fit_batch(spec, x, Y, init={"BH4_center": vals["BH4_center"]})
    assert bool(ds.success.all())
    np.testing.assert_allclose(ds.BH4_center, vals["BH4_center"], atol=0.01)
    np.testing.assert_allclose(ds.BH4_b_sigma, ds.BH4_sigma)
    np.testing.assert_allclose(ds.BH4_amplitude, 20.0, rtol=0.02)


def test_nonconverging_flagged_and_nan_masked():
    x = np.linspace(0, 10, 300)
    model = GaussianModel()
    Y, _ = make_stack(model, x, {"amplitude": 5.0, "center": 5.0, "sigma": 0.5}, 6, {}, 0.01)
    Y[2, 10] = np.nan
    Y[4, :] = np.inf
    params = model.make_params(amplitude=4, center=5.5, sigma=0.8)
    ds = fit_batch(model, x, Y, params=params)
    assert ds.masked.values.tolist() == [False, False, True, False, True, False]
    assert ds.attrs["n_masked"] == 2
    assert np.isnan(ds.center.values[[2, 4]]).all() and not ds.success.values[[2, 4]].any()
    assert ds.success.values[[0, 1, 3, 5]].all()
    np.testing.assert_allclose(ds.center.values[[0, 1, 3, 5]], 5.0, atol=0.01)
    # too few iterations: flagged, never reported as converged
    ds2 = fit_batch(model, x, Y, params=params, max_iter=2)
    assert not ds2.success.any() and ds2.attrs["n_failed"] == 4
    # pure noise from a bad start: a fit that cannot converge is flagged
    Yn = RNG.normal(0, 1, (3, 300))
    ds3 = fit_batch(model, x, Yn, params=params, max_iter=30)
    assert ds3.attrs["n_failed"] == int((~ds3.success).sum())


def test_warm_start_map_and_bad_pixel():
    x = np.linspace(0, 10, 400)
    model = LorentzianModel() + ConstantModel()
    ny, nx = 6, 8
    cen = 3.0 + 0.25 * np.arange(ny)[:, None] + 0.1 * np.arange(nx)[None, :]
    Y = np.empty((ny, nx, x.size))
    for i in range(ny):
        for j in range(nx):
            Y[i, j] = model.eval(x=x, amplitude=4.0, center=cen[i, j], sigma=0.3, c=0.1)
    Y += RNG.normal(0, 0.01, Y.shape)
    Y[2, 3] = RNG.normal(0, 1, x.size)  # a garbage pixel
    Y[3, 5, 7] = np.nan  # a masked pixel
    params = model.make_params(amplitude=3.0, center=3.2, sigma=0.4, c=0.0)
    params["sigma"].set(min=0)
    ds = fit_batch(model, x, Y, params=params, warm_start=True, dims=("y", "x"))
    assert ds.center.dims == ("y", "x") and ds.center.shape == (ny, nx)
    ok = ds.success.values & ~ds.masked.values
    good = np.ones((ny, nx), bool)
    good[2, 3] = good[3, 5] = False
    assert ok[good].all()
    np.testing.assert_allclose(ds.center.values[good], cen[good], atol=2e-3)
    assert bool(ds.masked[3, 5])
    # the neighbour below the garbage pixel is as good as a cold fit
    cold = fit_batch(model, x, Y, params=params, dims=("y", "x"))
    np.testing.assert_allclose(ds.center.values[good], cold.center.values[good], atol=1e-6)


def test_dataarray_dims_roundtrip_and_evaluate():
    x = np.linspace(0, 10, 200)
    model = GaussianModel(prefix="g_") + LinearModel(prefix="bl_")
    Y, _ = make_stack(model, x, {"g_amplitude": 3.0, "g_center": 4.0, "g_sigma": 0.5, "bl_slope": 0.0,
                                 "bl_intercept": 0.2}, 12, {"g_center": 0.2}, 0.01)
    da = xr.DataArray(Y.reshape(3, 4, -1), dims=("row", "col", "energy"),
                      coords={"row": [10, 20, 30], "col": list("abcd"), "energy": x})
    params = model.make_params(g_amplitude=2.5, g_center=4.0, g_sigma=0.6, bl_slope=0, bl_intercept=0)
    ds = fit_batch(model, None, da, params=params)
    assert ds.g_center.dims == ("row", "col")
    assert ds.row.values.tolist() == [10, 20, 30] and ds.col.values.tolist() == list("abcd")
    np.testing.assert_allclose(ds.g_center.values.reshape(-1), ds.g_center.values.ravel())
    best, comps = evaluate_batch(model, x, ds, params=params, components=True)
    assert best.shape == (3, 4, x.size) and set(comps) == {"g_", "bl_"}
    resid = best - da.values
    assert np.sqrt(np.mean(resid ** 2)) < 0.015
    np.testing.assert_allclose(comps["g_"] + comps["bl_"], best)


def _line_or_fail(x, a=1.0):
    if a > 5:
        raise ValueError("slope above the instrument's range")
    return a * x


def test_lmfit_loop_reports_why_a_dataset_failed():
    """A dataset whose lmfit fit raises is NaN and not successful, with the reason in attrs."""
    from lmfit import Model

    x = np.linspace(0, 1, 50)
    Y = np.vstack([2 * x, 9 * x, 3 * x]) + 0.001 * np.random.default_rng(0).normal(size=(3, 50))
    model = Model(_line_or_fail)
    ds = fit_batch(model, x, Y, params=model.make_params(a=1.0), n_jobs=2)
    assert ds.attrs["method"] == "lmfit-loop"
    assert ds.success.values.tolist() == [True, False, True]
    assert np.isnan(ds.a.values[1]) and ds.a.values[0] == pytest.approx(2, abs=0.01)
    assert any("instrument's range" in e for e in ds.attrs["fit_errors"])


def test_fallback_lmfit_loop():
    x = np.linspace(0, 5, 200)
    model = ExponentialModel() + ConstantModel()  # exponential is not batched -> lmfit loop
    Y, vals = make_stack(model, x, {"amplitude": 5.0, "decay": 1.2, "c": 0.5}, 5, {"decay": 0.1}, 0.01)
    params = model.make_params(amplitude=4, decay=1.0, c=0.3)
    ds = fit_batch(model, x, Y, params=params, n_jobs=1)
    assert ds.attrs["method"] == "lmfit-loop" and "exponential" in ds.attrs["fallback_reason"]
    assert bool(ds.success.all())
    np.testing.assert_allclose(ds.decay, vals["decay"], rtol=0.01)
    assert set(ds.data_vars) >= {"decay", "decay_stderr", "chisqr", "redchi", "r2", "nfev", "masked"}
    with pytest.raises(FitError):
        fit_batch(model, x, Y, params=params, method="batched-lm")
    best = evaluate_batch(model, x, ds, params=params)
    assert best.shape == Y.shape


def test_eels_powerlaw_plus_gaussians():
    E = np.linspace(300, 700, 1024)  # energy loss, eV
    model = PowerLawModel(prefix="bg_") + GaussianModel(prefix="g1_") + GaussianModel(prefix="g2_")
    truth = {"bg_amplitude": 1e9, "bg_exponent": -3.0, "g1_amplitude": 400.0, "g1_center": 400.0,
             "g1_sigma": 8.0, "g2_amplitude": 250.0, "g2_center": 530.0, "g2_sigma": 10.0}
    Y, vals = make_stack(model, E, truth, 16, {"g1_amplitude": 40.0}, 0.2)
    params = model.make_params(bg_amplitude=8e8, bg_exponent=-2.95, g1_amplitude=300, g1_center=402,
                               g1_sigma=7, g2_amplitude=200, g2_center=528, g2_sigma=11)
    ds = fit_batch(model, E, Y.reshape(4, 4, -1), params=params, dims=("y", "x"))
    assert bool(ds.success.all())
    np.testing.assert_allclose(ds.g1_amplitude.values.ravel(), vals["g1_amplitude"], rtol=0.03)
    np.testing.assert_allclose(ds.bg_exponent, -3.0, atol=0.01)
    compare_with_lmfit(model, params, E, Y, ds, [0, 7], names=["g1_amplitude", "g2_amplitude", "bg_exponent"],
                       center_names=["g1_center", "g2_center"])


def test_afm_hertz_contact_point():
    rng = np.random.default_rng(7)
    d = np.linspace(-2e-6, 2e-6, 500)  # indentation axis, m
    model = C.HertzParaboloidModel()
    n = 20
    E = rng.uniform(2e3, 8e3, n)
    d0 = rng.normal(0, 2e-7, n)
    Y = np.array([C.hertz_paraboloid(d, E[i], 5e-6, 0.5, d0[i], 1e-10) for i in range(n)])
    Y += rng.normal(0, 2e-11, Y.shape)
    params = model.make_params(E=4e3, R=5e-6, nu=0.5, contact_point=0.0, baseline=0.0)
    ds = fit_batch(model, d, Y, params=params)
    assert bool(ds.success.all())
    np.testing.assert_allclose(ds.E, E, rtol=0.01)
    np.testing.assert_allclose(ds.contact_point, d0, atol=2e-8)
    r = model.fit(Y[3], params.copy(), x=d)
    assert float(ds.E[3]) == pytest.approx(r.params["E"].value, rel=1e-3)
    assert float(ds.E_stderr[3]) == pytest.approx(r.params["E"].stderr, rel=0.05)


@pytest.mark.parametrize("cls,extra", [(C.SneddonConeModel, {"alpha": 20.0}), (C.DMTModel, {"R": 5e-6})])
def test_afm_other_models(cls, extra):
    rng = np.random.default_rng(3)
    d = np.linspace(-2e-6, 2e-6, 400)
    model = cls()
    truth = dict(E=5e3, nu=0.5, contact_point=1e-7, baseline=0.0, **extra)
    if cls is C.DMTModel:
        truth["adhesion"] = 2e-10
    Y = np.array([model.eval(x=d, **truth) for _ in range(4)]) + rng.normal(0, 1e-11, (4, d.size))
    start = dict(truth, E=3e3, contact_point=0.0)
    ds = fit_batch(model, d, Y, params=model.make_params(**start))
    assert bool(ds.success.all())
    np.testing.assert_allclose(ds.E, 5e3, rtol=0.02)


def test_bad_input():
    x = np.linspace(0, 1, 10)
    with pytest.raises(ParameterError):
        fit_batch(GaussianModel(), x, np.ones((3, 11)))
    with pytest.raises(ParameterError):
        fit_batch(GaussianModel(), x, np.ones((3, 10)), method="nope")
    with pytest.raises(ParameterError):
        fit_batch(GaussianModel(), x, np.ones((3, 10)), init={"nope": 1.0})
    with pytest.raises(ParameterError):
        fit_batch("gaussian", x, np.ones((3, 10)))


KIND_PARAMS = [("gaussian", [2, 5, 1]), ("lorentzian", [2, 5, 1]), ("pseudo-voigt", [2, 5, 1, 0.3]),
               ("voigt", [2, 5, 1, 0.7]), ("pearson7", [2, 5, 1, 1.7]), ("powerlaw", [3, -2.5]),
               ("gl_product", [2, 5, 1.5, 0.3]), ("gl_sum", [2, 5, 1.5, 0.3]), ("constant", [0.4]),
               ("linear", [0.1, 0.4]), ("hertz", [1e3, 1e-2, 0.3, 4.03, 0.1]), ("sneddon", [1e3, 20, 0.3, 4.03, 0.1]),
               ("dmt", [1e3, 1e-2, 0.3, 0.3, 4.03, 0.1])]  # contact off the grid (kink)


@pytest.mark.parametrize("kind,p", KIND_PARAMS, ids=[k for k, _ in KIND_PARAMS])
def test_analytic_jacobians_match_finite_differences(kind, p):
    from specproc.fitting import _batch_kernels as K

    x = np.linspace(1, 10, 97)
    f = K.NUMPY_FUNCS[kind]
    out = f(x, *p)
    for j in range(len(p)):
        h = 1e-6 * max(abs(p[j]), 1e-3)
        up, dn = list(p), list(p)
        up[j] += h
        dn[j] -= h
        fd = (f(x, *up)[0] - f(x, *dn)[0]) / (2 * h)
        roundoff = 1e-15 * np.max(np.abs(out[0])) / h
        np.testing.assert_allclose(out[1 + j], fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(fd)) + 10 * roundoff)


def test_numba_kernel_matches_numpy_path():
    from specproc.fitting import _batch_kernels as K

    if not K.HAVE_NUMBA:
        pytest.skip("numba not installed")
    kinds = ["pseudo-voigt", "pearson7", "linear", "polynomial", "gl_product", "gl_sum", "hertz", "sneddon", "dmt",
             "powerlaw", "gaussian", "lorentzian", "constant"]
    npars = np.array([4, 4, 2, 3, 4, 4, 5, 5, 6, 2, 3, 3, 1])
    offs = np.concatenate([[0], np.cumsum(npars)[:-1]])
    x = np.linspace(1, 10, 150)
    row = [2, 5, 1, .3, 1, 6, 1, 1.5, .1, .2, .1, .01, .001, 2, 5, 1.5, .3, 2, 5, 1.5, .3, 10, 1e-2, .5, 4, .1, 10, 20,
           .5, 4, .1, 10, 1e-2, .5, .3, 4, .1, 3, -2.5, 1, 4, 1, 1, 7, 1, .5]
    P = np.array([row, row, row], float) * np.array([[1.0], [1.01], [0.99]])
    Y = RNG.normal(size=(3, x.size))
    W = RNG.uniform(0.5, 2, (3, x.size))
    val, J, _ = K.eval_components(kinds, offs, npars, x, P)
    r = W * (Y - val)
    Jw = J * W[:, :, None]
    cost, H, g = np.zeros(3), np.zeros((3, P.shape[1], P.shape[1])), np.zeros((3, P.shape[1]))
    K.normal_kernel(x, Y, W, np.arange(3), P, np.array([K.CODE[k] for k in kinds]), offs.astype(np.int64),
                    npars.astype(np.int64), True, cost, H, g)
    np.testing.assert_allclose(cost, (r ** 2).sum(1), rtol=1e-12)
    np.testing.assert_allclose(H, np.einsum("nmp,nmq->npq", Jw, Jw), rtol=1e-9, atol=1e-12 * np.abs(H).max())
    np.testing.assert_allclose(g, np.einsum("nmp,nm->np", Jw, r), rtol=1e-9, atol=1e-12 * np.abs(g).max())


@pytest.mark.parametrize("cls", [GaussianModel, VoigtModel], ids=["numba-path", "numpy-path"])
def test_weights_and_float32_input(cls):
    x = np.linspace(0, 10, 300)
    model = cls() + ConstantModel()
    Y, _ = make_stack(model, x, {"amplitude": 5.0, "center": 5.0, "sigma": 0.5, "c": 0.2}, 4, {"center": 0.1}, 0.02)
    w = 1.0 / (0.01 + 0.02 * x / 10)  # 1/sigma, heteroscedastic
    params = model.make_params(amplitude=4, center=5.2, sigma=0.6, c=0.1)
    ds = fit_batch(model, x, Y.astype(np.float32), params=params, weights=w)
    assert bool(ds.success.all())
    r = model.fit(Y[1].astype(np.float32).astype(float), params.copy(), x=x, weights=w)
    assert abs(float(ds.center[1]) - r.params["center"].value) < 1e-3
    assert float(ds.amplitude[1]) == pytest.approx(r.params["amplitude"].value, rel=1e-3)
    assert float(ds.amplitude_stderr[1]) == pytest.approx(r.params["amplitude"].stderr, rel=0.05)
    assert float(ds.chisqr[1]) == pytest.approx(r.chisqr, rel=1e-5)


@pytest.mark.parametrize("numpy_path", [False, True])
def test_start_from_the_mean_optimum_same_fits_fewer_iterations(numpy_path, monkeypatch):
    """start="mean": the stack's mean is fitted first and each dataset starts from that optimum
    where it is the better start. Same optima as the given start (within 1e-4 of the centre,
    < 1/20 of its standard error), fewer LM iterations; a dataset unlike the others (its second
    line 1.5 units away), whose exact truth is the given start, keeps it. A mean optimum on a
    bound is not used (a start there can cost the whole iteration budget)."""
    from specproc.fitting import _batch_kernels as K

    if numpy_path:
        monkeypatch.setattr(K, "HAVE_NUMBA", False)
    rng = np.random.default_rng(11)
    x = np.linspace(-10, 10, 801)
    model = PseudoVoigtModel(prefix="a_") + PseudoVoigtModel(prefix="b_") + ConstantModel(prefix="c_")
    truth = {"a_amplitude": 3.0, "a_center": -2.0, "a_sigma": 0.6, "a_fraction": 0.4,
             "b_amplitude": 1.5, "b_center": 2.5, "b_sigma": 0.9, "b_fraction": 0.6, "c_c": 0.1}
    Y, vals = make_stack(model, x, truth, 60, {"a_center": 0.2, "b_center": 0.2, "a_sigma": 0.05}, 0.01, rng)
    odd = {**truth, "b_center": 4.0}
    Y[7] = model.eval(x=x, **odd) + rng.normal(0, 0.01, x.size)
    vals["b_center"][7] = 4.0
    params = model.make_params()
    for nm, v in odd.items():
        params[nm].set(value=v)
    for pre in ("a_", "b_"):
        params[pre + "center"].set(min=-10, max=10)
        params[pre + "sigma"].set(min=0.05, max=5)
        params[pre + "amplitude"].set(min=0)
        params[pre + "fraction"].set(min=0, max=1)
    given = fit_batch(model, x, Y, params=params)
    mean = fit_batch(model, x, Y, params=params, start="mean")
    assert bool(mean.success.all()) and bool(given.success.all())
    assert 50 <= mean.attrs["n_mean_start"] < 60      # most spectra, not the odd one
    for nm in ("a_center", "b_center"):
        d = np.abs(mean[nm].values - given[nm].values)
        assert d.max() < 1e-4 and np.all(d < mean[nm + "_stderr"].values / 20), nm
        assert np.abs(mean[nm].values - vals[nm]).max() < 0.05, nm
    assert int(mean.nfev.sum()) < 0.9 * int(given.nfev.sum())
    # a start that sends the second line out of the window: the mean's optimum ends on a bound
    params["b_center"].set(value=9.9)
    params["b_amplitude"].set(value=0.01)
    bad = fit_batch(model, x, Y, params=params, start="mean")
    assert bad.attrs["n_mean_start"] == 0
    with pytest.raises(ParameterError, match="start"):
        fit_batch(model, x, Y, params=params, start="median")
