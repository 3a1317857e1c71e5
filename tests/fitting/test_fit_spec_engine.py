"""fit_spec's batch-engine budget and restart, on a crowded window with a known truth.

The window is XRD-like: nine pseudo-Voigt reflections with Kα2-like satellites on Poisson counts, the
ninth centred beyond the right end of the window (a margin reflection of which only the tail is
fitted: a poorly determined direction along which Levenberg–Marquardt crawls). From picked-like starts
the engine needs more than 200 iterations here; the default budget (25 per free parameter) converges.
"""
from __future__ import annotations

import numpy as np
import pytest

from specproc.fitting import batch
from specproc.fitting.batch import fit_batch
from specproc.fitting.lineshapes import evaluate
from specproc.fitting.models import ModelSpec, Peak, Satellite
from specproc.fitting.fit import _polish, _restart_point, engine_budget, fit_spec

N_PEAKS, FWHM, STEP, KA2_OFFSET, KA2_RATIO, BACKGROUND = 9, 0.12, 0.02, 0.13, 0.5, 50.0


def crowded_window(seed=0):
    """(spec, x, y, weights, true_centres): N_PEAKS reflections, the last one outside the window."""
    rng = np.random.default_rng(seed)
    fwhm = FWHM * rng.uniform(0.8, 1.25, N_PEAKS)
    centre = 50.0 + np.cumsum(rng.uniform(1.6, 2.6, N_PEAKS) * FWHM)
    x = np.arange(centre[0] - 4 * FWHM, centre[-1] - 0.7 * FWHM, STEP)
    fraction = rng.uniform(0.2, 0.8, N_PEAKS)
    area = rng.uniform(0.3, 1.0, N_PEAKS) * 3000 * FWHM
    mu = np.full(x.size, BACKGROUND)
    for c, fw, a, fr in zip(centre, fwhm, area, fraction):
        for cc, aa in ((c, a), (c + KA2_OFFSET, a * KA2_RATIO)):
            mu += evaluate("pseudo-voigt", x, center=cc, sigma=fw / 2, amplitude=aa, fraction=fr)
    counts = rng.poisson(mu).astype(float)
    starts = centre + rng.normal(0, 0.3, N_PEAKS) * FWHM
    starts[-1] = min(starts[-1], x[-1])
    peaks = []
    for i, s in enumerate(starts):
        lo = max((starts[i - 1] + s) / 2 if i else x[0], s - FWHM)
        hi = min((starts[i + 1] + s) / 2 if i + 1 < N_PEAKS else s + FWHM, s + FWHM)
        peaks.append(Peak(name=f"p{i}", center=float(s), fwhm=float(2 * FWHM),
                          bounds={"center": (float(lo), float(hi)), "sigma": (STEP / 4, 10 * FWHM)},
                          satellites=[Satellite(name="Ka2", offset=KA2_OFFSET, ratio=KA2_RATIO)]))
    spec = ModelSpec(peaks=peaks, baseline="linear")
    return spec, x, counts - BACKGROUND, 1 / np.sqrt(np.clip(counts, 1, None)), centre


def engine_alone(spec, x, y, w, max_iter):
    model, params = spec.to_lmfit(x, y)
    return fit_batch(model, x, y[None], params=params, weights=w[None], method="batched-lm", n_jobs=1,
                     max_iter=max_iter, expr_errors=False)


def n_free(spec, x, y):
    _, params = spec.to_lmfit(x, y)
    return sum(p.vary and not p.expr for p in params.values())


def assert_centres_recovered(out, truth):
    """The reflections inside the window: within 4 reported standard errors and 0.01° (1/12 FWHM)."""
    for i, c in enumerate(truth[:-1]):
        got, se = out.values[f"p{i}_center"], out.stderr[f"p{i}_center"]
        assert se is not None and 0 < se < 0.01, (i, se)
        assert abs(got - c) < 4 * se and abs(got - c) < 0.01, (i, got, c, se)


@pytest.fixture(scope="module")
def window():
    return crowded_window()


def test_engine_budget_scales_with_parameters():
    assert engine_budget(3) == 200
    assert engine_budget(38) == 950
    assert engine_budget(500) == 2000


def test_budget_converges_where_200_iterations_do_not(window):
    spec, x, y, w, truth = window
    # the premise: 200 engine iterations stop short here, the default budget converges
    assert not bool(engine_alone(spec, x, y, w, 200)["success"].values[0])
    out = fit_spec(spec, x, y, weights=w)
    nvarys = out.stats["nvarys"]
    assert out.stats["engine_iter"] == engine_budget(nvarys) == 25 * nvarys
    assert out.stats["optimizer"] == "engine" and out.stats["engine_converged"] is True
    assert out.stats["success"] and 200 < out.stats["engine_nfev"] <= out.stats["engine_iter"]
    assert_centres_recovered(out, truth)


def test_stopped_short_engine_restarts_lmfit_from_its_end_point(window):
    spec, x, y, w, truth = window
    end = engine_alone(spec, x, y, w, 200)
    start_chi2 = float(engine_alone(spec, x, y, w, 1)["chisqr"].values[0])  # 1 iteration ~ the starts
    out = fit_spec(spec, x, y, weights=w, engine_iter=200, max_nfev=20 * (n_free(spec, x, y) + 1))
    assert out.stats["engine_converged"] is False and out.stats["engine_iter"] == 200
    assert out.stats["optimizer"] in ("engine+lmfit", "engine-end")
    # never worse than the engine's end point, which is far better than the starts
    assert out.stats["chisqr"] <= float(end["chisqr"].values[0]) * (1 + 1e-9) < start_chi2
    assert_centres_recovered(out, truth)


def test_restart_point_strictly_inside_bounds_and_only_if_better(window):
    spec, x, y, w, _ = window
    model, params = spec.to_lmfit(x, y)
    ds, bm = _polish(model, params, x, y, w, max_iter=50)
    assert not bool(ds["success"].values[0])
    # an end point on bounds: two finite bounds -> 1e-4 of the range inside them (lmfit's transform
    # has zero slope on a bound); a one-sided bound (amplitude >= 0) -> 1e-4 of the start's distance
    end = ds.copy(deep=True)
    frac, amp, cen = "p0_fraction", "p1_amplitude", "p8_center"
    end[frac].values[:] = 1.0
    end[amp].values[:] = 0.0
    end[cen].values[:] = params[cen].max + 1.0
    amp0 = params[amp].value
    p = params.copy()
    assert _restart_point(p, end, bm, x, y, w)
    assert p[frac].value == pytest.approx(1 - 1e-4)
    assert p[amp].value == pytest.approx(1e-4 * amp0) and p[amp].value > 0
    lo, hi = p[cen].min, p[cen].max
    assert p[cen].value == pytest.approx(hi - 1e-4 * (hi - lo)) and lo < p[cen].value < hi
    assert p["p2_center"].value == float(ds["p2_center"].values[0])
    # an end point with a higher chi² than the starts is not used
    worse = ds.copy(deep=True)
    for i in range(N_PEAKS):
        worse[f"p{i}_amplitude"].values[:] = 1e3 * params[f"p{i}_amplitude"].value
    p = params.copy()
    assert not _restart_point(p, worse, bm, x, y, w)
    assert p.valuesdict() == params.valuesdict()


def test_model_compiled_once(window, monkeypatch):
    spec, x, y, w, _ = window
    calls = []
    real = batch.compile_model
    monkeypatch.setattr(batch, "compile_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = fit_spec(spec, x, y, weights=w)
    assert out.stats["optimizer"] == "engine" and out.values_fn is not None
    assert len(calls) == 1
    vals, errs, _ = out.derived(lambda v: np.array([v["p3_amplitude"] + v["p4_amplitude"]]))
    assert np.isfinite(vals[0]) and np.isfinite(errs[0])
