"""Force curves: every contact model against analytic curves from random truths, the array API,
contact points, fit ranges, quality flags, Tabor suggestion, force maps from files, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ParameterError
from specproc.testing.contract import ProcessorContract
from specproc.fitting.components import dmt, hertz_paraboloid, sneddon_cone
from specproc.techniques.afm.force import BILODEAU, hertz_sphere, jkr

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "afm"


def curves(rng, fn, ny, nx, m=500, noise=2e-3, per_curve_ramp=False, logE=(6, 10.5), **kw):
    """Approach curves: heights decreasing towards the sample, force = fn(-h) + offset + tilt + noise
    (offset, tilt and noise SD relative to the largest force: ``noise`` = 1 / SNR)."""
    E = 10 ** rng.uniform(*logE, (ny, nx))
    cp = rng.normal(0, 3e-9, (ny, nx))
    h = np.broadcast_to(np.linspace(60e-9, -30e-9, m), (ny, nx, m)).copy()
    if per_curve_ramp:
        h += rng.uniform(-10e-9, 10e-9, (ny, nx, 1))
    F = np.empty((ny, nx, m))
    for i in range(ny):
        for j in range(nx):
            F[i, j] = fn(-h[i, j], E=E[i, j], contact_point=-cp[i, j], **kw)
    # scale the noise to the curve (a stiff sample gives large forces)
    amp = np.abs(F).max(-1, keepdims=True)
    F = F + 1e-3 * amp * (1 + 2e7 * (-h)) + rng.normal(0, 1, F.shape) * noise * amp
    return h, F, E, cp


@pytest.mark.parametrize("seed", [1, 2])
def test_hertz_paraboloid_map_recovers_moduli_and_contact(seed):
    rng = np.random.default_rng(seed)
    R, nu = rng.uniform(5e-9, 50e-9), rng.uniform(0.2, 0.5)
    h, F, E, cp = curves(rng, lambda d, E, contact_point: hertz_paraboloid(d, E, R, nu, contact_point, 0), 6, 7)
    ds = sp.afm.fit_force_map(h, F, model="hertz-paraboloid", tip_radius_m=R, poisson_ratio=nu)
    assert ds.E_Pa.shape == (6, 7) and ds.contact_point_m.shape == (6, 7)
    assert (ds.flag.values == 0).all() and ds.good.values.all()
    np.testing.assert_allclose(ds.E_Pa.values, E, rtol=0.01)
    np.testing.assert_allclose(ds.contact_point_m.values, cp, atol=0.3e-9)
    assert (ds.E_stderr_Pa.values > 0).all() and (ds.E_stderr_Pa.values < 0.05 * E).all()
    assert (np.abs(ds.E_Pa.values - E) < 4 * ds.E_stderr_Pa.values).all()
    assert ds.attrs["model"] == "hertz-paraboloid" and ds.attrs["method"] == "profile-lstsq"


def test_per_curve_ramps_and_fit_range():
    rng = np.random.default_rng(5)
    R, nu = 20e-9, 0.3
    h, F, E, cp = curves(rng, lambda d, E, contact_point: hertz_paraboloid(d, E, R, nu, contact_point, 0), 4, 4,
                         per_curve_ramp=True, noise=1e-3)
    # the generated curves carry a baseline slope: fit it (the default is nanite's offset-only baseline)
    ds = sp.afm.fit_force_map(h, F, tip_radius_m=R, poisson_ratio=nu, max_indentation_m=10e-9, baseline="tilt")
    assert ds.attrs["shared_axis"] is False
    np.testing.assert_allclose(ds.E_Pa.values, E, rtol=0.01)
    # honest error bars: the truth within 4 standard errors everywhere
    assert (np.abs(ds.E_Pa.values - E) < 4 * ds.E_stderr_Pa.values).all()
    np.testing.assert_allclose(ds.contact_point_m.values, cp, atol=0.5e-9)
    assert (ds.max_indentation_m.values < 10.5e-9).all() and (ds.max_indentation_m.values > 9e-9).all()


def test_spring_constant_tip_position():
    rng = np.random.default_rng(8)
    R, nu, k = 10e-9, 0.5, 0.8
    h, F, E, cp = curves(rng, lambda d, E, contact_point: hertz_paraboloid(d, E, R, nu, contact_point, 0), 3, 3)
    z_piezo = h - (F - F[..., :1]) / k          # the piezo travels further by the cantilever bending
    ds = sp.afm.fit_force_map(z_piezo, F - 0 * F, tip_radius_m=R, poisson_ratio=nu, spring_constant_N_per_m=k)
    # data were generated in the tip frame up to a constant offset F0/k
    np.testing.assert_allclose(ds.E_Pa.values, E, rtol=0.01)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("model", ["dmt", "cone", "pyramid", "hertz-sphere", "jkr"])
def test_other_models_against_analytic_curves(model, seed):
    rng = np.random.default_rng(["dmt", "cone", "pyramid", "hertz-sphere", "jkr"].index(model) * 10 + seed)
    R, nu, alpha = rng.uniform(10e-9, 40e-9), 0.3, rng.uniform(15, 35)
    kw = {}
    if model == "dmt":
        ad = rng.uniform(0.5e-9, 3e-9)
        fn = lambda d, E, contact_point: dmt(d, E, R, nu, ad, contact_point, 0)  # noqa: E731
    elif model == "cone":
        fn = lambda d, E, contact_point: sneddon_cone(d, E, alpha, nu, contact_point, 0)  # noqa: E731
        kw = {"half_angle_deg": alpha}
    elif model == "pyramid":
        # Bilodeau: F = 0.7453 E* tan(alpha) delta^2
        fn = lambda d, E, contact_point: (BILODEAU * E / (1 - nu ** 2) * np.tan(np.radians(alpha))  # noqa: E731
                                          * np.maximum(d - contact_point, 0) ** 2)
        kw = {"half_angle_deg": alpha}
    elif model == "hertz-sphere":
        fn = lambda d, E, contact_point: hertz_sphere(d, E, R, nu, contact_point, 0)  # noqa: E731
    else:
        w = rng.uniform(0.02, 0.2)
        fn = lambda d, E, contact_point: jkr(d, E, w, R, nu, contact_point, 0)  # noqa: E731
    # adhesion must stand out of the noise (1/500 of the largest force) for w / F_ad to be measurable
    h, F, E, cp = curves(rng, fn, 2, 2, m=400, logE=(7.3, 8.0) if model in ("dmt", "jkr") else (6, 10.5))
    ds = sp.afm.fit_force_map(h, F, model=model, tip_radius_m=R, poisson_ratio=nu, **kw)
    assert (ds.flag.values == 0).all(), ds.flag.values
    np.testing.assert_allclose(ds.E_Pa.values, E, rtol=0.01)
    if model == "dmt":
        np.testing.assert_allclose(ds.adhesion_N.values, ad, rtol=0.5)   # a step at contact: weakly determined
        assert (np.abs(ds.adhesion_N.values - ad) < 4 * ds.adhesion_stderr_N.values).all()
    if model == "jkr":
        np.testing.assert_allclose(ds.work_of_adhesion_J_m2.values, w, rtol=0.1)
        assert (np.abs(ds.work_of_adhesion_J_m2.values - w) < 4 * ds.work_of_adhesion_stderr_J_m2.values).all()


def test_sphere_differs_from_paraboloid_at_deep_indentation():
    # delta ~ R: Sneddon's sphere is stiffer-looking than Hertz's paraboloid; fitting the paraboloid
    # to it overestimates E — the sphere model must not
    R, nu, E = 15e-9, 0.5, 2e9
    h = np.linspace(20e-9, -15e-9, 600)
    F = hertz_sphere(-h, E, R, nu, 0.0, 0.0)
    sph = sp.afm.fit_force_map(h, F, model="hertz-sphere", tip_radius_m=R, poisson_ratio=nu)
    par = sp.afm.fit_force_map(h, F, model="hertz-paraboloid", tip_radius_m=R, poisson_ratio=nu)
    assert sph.E_Pa.values[0, 0] == pytest.approx(E, rel=1e-3)
    assert abs(par.E_Pa.values[0, 0] / E - 1) > 0.03


def test_flags_no_contact_and_nan_curves_and_tabor():
    rng = np.random.default_rng(9)
    R = 10e-9
    h, F, E, cp = curves(rng, lambda d, E, contact_point: hertz_paraboloid(d, E, R, 0.5, contact_point, 0), 2, 3)
    F[0, 0] = rng.normal(0, 2e-11, F.shape[-1])          # flat: the tip never touched
    F[1, 2, 10] = np.nan
    ds = sp.afm.fit_force_map(h, F, tip_radius_m=R)
    assert ds.flag.values[0, 0] & 8 and not ds.good.values[0, 0]
    assert ds.flag.values[1, 2] & 16 and np.isnan(ds.E_Pa.values[1, 2])
    assert ds.good.values.sum() == 4
    assert ds.attrs["suggested_model"].startswith("hertz")
    # strong adhesion on a soft sample -> JKR suggested
    mu, s = sp.afm.force.tabor(1e6, 5e-9, 50e-9, 0.5, 0.3e-9) if hasattr(sp.afm, "force") else (None, None)
    from specproc.techniques.afm.force import tabor

    mu, s = tabor(1e6, 5e-9, 50e-9)
    assert mu > 5 and s == "jkr"
    mu, s = tabor(100e9, 1e-9, 10e-9)
    assert mu < 0.1 and s == "dmt"


def test_bad_input():
    h = np.linspace(1e-8, -1e-8, 100)
    with pytest.raises(ParameterError, match="tip_radius_m"):
        sp.afm.fit_force_map(h, h * 0)
    with pytest.raises(ParameterError, match="absurd"):
        sp.afm.fit_force_map(h, h * 0, tip_radius_m=0.01)
    with pytest.raises(ParameterError, match="same shape"):
        sp.afm.fit_force_map(h, h[:50], tip_radius_m=1e-8)
    with pytest.raises(ParameterError, match="unknown model"):
        sp.afm.fit_force_map(h, h * 0, model="hooke", tip_radius_m=1e-8)
    with pytest.raises(ParameterError, match="half_angle"):
        sp.afm.fit_force_map(h, h * 0, model="cone")
    with pytest.raises(ParameterError, match="at least 20"):
        sp.afm.fit_force_map(h[:10], h[:10], tip_radius_m=1e-8)
    with pytest.raises(ParameterError):
        sp.afm.analyse(sp.read(SAMPLE / "Li_vs_LiBH4-70LiNBH_forcemap.nc"), tip_radius_m=-1)


def test_force_map_file_through_processor_and_cli(capsys):
    truth = json.loads((SAMPLE / "truth.json").read_text())["force_map"]
    m = sp.read(SAMPLE / truth["file"])
    r = sp.afm.analyse(m, tip_radius_m=truth["tip_radius_m"], poisson_ratio=truth["poisson_ratio"])
    E = np.array(truth["E_Pa"])
    np.testing.assert_allclose(r.data.E_Pa.values, E, rtol=0.01)
    np.testing.assert_allclose(r.data.contact_point_m.values, truth["contact_point_m"], atol=0.3e-9)
    assert r.quantities["modulus.mean_Pa"].value == pytest.approx(E.mean(), rel=0.01)
    t = r.tables["curves"]
    assert len(t) == E.size and {"contact_point_m", "max_indentation_m", "model", "residual_rms_N", "flag",
                                 "quality"} <= set(t.columns)
    assert (t.quality == "good").all()
    ds = sp.afm.fit_force_map(SAMPLE / truth["file"], tip_radius_m=truth["tip_radius_m"],
                              poisson_ratio=truth["poisson_ratio"])
    np.testing.assert_allclose(ds.E_Pa.values, r.data.E_Pa.values)
    from specproc.cli import main

    code = main(["afm", str(SAMPLE / truth["file"]), "--tip-radius", str(truth["tip_radius_m"]), "--json"])
    e = json.loads(capsys.readouterr().out)[0]
    assert code == 0 and e["force"]["n_good"] == E.size and "roughness" not in e
    assert e["modulus"]["mean_Pa"] > 0


class TestFitForceMapContract(ProcessorContract):
    processor = "afm.fit_force_map"
    params = {"tip_radius_m": 1e-8, "poisson_ratio": 0.3}

    def make_input(self):
        return sp.read(SAMPLE / "Li_vs_LiBH4-70LiNBH_forcemap.nc")
