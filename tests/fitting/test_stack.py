"""fitting.stack: a stack fitted on the batch engine, read row by row (values, errors, bounds, warnings)."""
import numpy as np
import pytest

from specproc.fitting.models import ModelSpec, Peak
from specproc.fitting.stack import fit_stack


def _stack(n=40, seed=3, noise=0.01):
    rng = np.random.default_rng(seed)
    x = np.linspace(-10, 10, 401)
    centers = rng.uniform(-1.0, 1.0, n)
    fwhm = rng.uniform(1.5, 2.5, n)
    area = rng.uniform(2.0, 4.0, n)
    s = fwhm / (2 * np.sqrt(2 * np.log(2)))
    Y = area[:, None] / (s[:, None] * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((x - centers[:, None]) / s[:, None]) ** 2)
    return x, Y + noise * rng.standard_normal(Y.shape), centers, fwhm, area


def _spec(center_bounds=None):
    pk = Peak(name="p", center=0.0, fwhm=2.0, shape="gaussian")
    if center_bounds is not None:
        pk.bounds["center"] = center_bounds
    return ModelSpec(peaks=[pk], baseline="none")


def test_rows_recover_the_truth_with_honest_errors():
    x, Y, c, fw, area = _stack()
    model, params = _spec().to_lmfit(x, Y.mean(0))
    sf = fit_stack(model, x, Y, params)
    assert len(sf) == Y.shape[0]
    pulls = []
    for k in range(len(sf)):
        assert sf.ok(k)
        row = sf.row(k, noise=0.01)
        assert row.bounded == [] and not any("bound" in w for w in row.warnings)
        pulls.append((row.values["p_center"] - c[k]) / row.stderr("p_center"))
        assert row.values["p_amplitude"] == pytest.approx(area[k], rel=0.02)
        assert row.stats["nvarys"] == len(sf.free) and row.stats["success"]
    pulls = np.asarray(pulls)
    # standard errors that mean something: the pulls of 40 fits are unit normal (|mean| < 0.5, SD 0.6..1.5)
    assert abs(pulls.mean()) < 0.5 and 0.6 < pulls.std() < 1.5


def test_a_parameter_at_its_bound_has_no_error_bar_and_a_warning():
    x, Y, c, fw, area = _stack(n=6, seed=5)
    Y = np.roll(Y, 60, axis=1)          # every centre moved +3 units: outside the allowed range
    model, params = _spec().to_lmfit(x, Y.mean(0))
    params["p_center"].set(min=-1.5, max=1.5)
    sf = fit_stack(model, x, Y, params)
    row = sf.row(0, noise=0.01)
    assert row.bounded == ["p_center"] and row.stderr("p_center") is None
    assert row.values["p_center"] == pytest.approx(1.5)
    assert any("p_center ended at a bound" in w for w in row.warnings)


def test_masked_points_are_no_data():
    x, Y, c, fw, area = _stack(n=5, seed=8)
    W = np.ones_like(Y)
    W[:, :100] = 0.0
    Y[:, :100] = 1e6                     # garbage where masked: never used
    model, params = _spec().to_lmfit(x, Y[:, 100:].mean(0).repeat(1))
    sf = fit_stack(model, x, Y, params, weights=W)
    row = sf.row(2)
    assert row.stats["ndata"] == x.size - 100
    assert row.values["p_center"] == pytest.approx(c[2], abs=0.02)


def test_columns_are_the_rows_and_recover_the_truth():
    """The column API (whole-stack arrays, what NMR/XPS/XRD summaries read) says what the rows say."""
    x, Y, c, fw, area = _stack(n=30, seed=11)
    Y[:3] = np.roll(Y[:3], 60, axis=1)     # three spectra pushed beyond the centre bounds
    model, params = _spec().to_lmfit(x, Y.mean(0))
    params["p_center"].set(min=-1.5, max=1.5)
    sf = fit_stack(model, x, Y, params)
    hit = sf.at_bound("p_center")
    assert hit[:3].all() and not hit[3:].any()
    assert np.array_equal(sf.at_bound(), hit)
    assert np.isnan(sf.stderr("p_center")[:3]).all() and np.isfinite(sf.stderr("p_center")[3:]).all()
    assert np.allclose(sf.values["p_center"][3:], c[3:], atol=5 * sf.errors["p_center"][3:])
    assert np.allclose(sf.values["p_amplitude"][3:], area[3:], rtol=0.02)
    assert sf.finite.all() and sf.converged.all()
    for k in (0, 5):
        row = sf.row(k)
        assert row.bounded == sf.bounded(k) == (["p_center"] if k < 3 else [])
        for n, v in sf.values.items():
            assert row.values[n] == v[k]
        assert row.stats["r2"] == sf.stats["r2"][k]
    # a bound that is no limit of a measurement is not reported
    sf2 = fit_stack(model, x, Y, params, skip_bounds={"p_center"})
    assert not sf2.at_bound().any() and sf2.bounded(0) == []


def test_default_parameters_and_a_failed_row():
    """Without params the engine's own start (and its bounds) are read; a row of NaN is not finite."""
    x, Y, c, fw, area = _stack(n=6, seed=4)
    Y[2] = np.nan
    spec = _spec(center_bounds=(-2.0, 2.0))
    sf = fit_stack(spec, x, Y)
    p0 = spec.to_lmfit(x, Y[np.isfinite(Y).all(axis=1)].mean(0))[1]["p_center"]   # the engine's own start
    assert sf.bounds["p_center"] == (p0.min, p0.max) and p0.min == -2.0
    assert not sf.finite[2] and not sf.ok(2)
    assert sf.finite[[0, 1, 3, 4, 5]].all()
    assert np.allclose(sf.values["p_center"][[0, 1, 3, 4, 5]], c[[0, 1, 3, 4, 5]], atol=0.02)
