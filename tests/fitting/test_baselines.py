"""The one registry of backgrounds (:mod:`specproc.fitting.baselines`).

Contract (every method, after pybaselines' shared tester): the input is never mutated, the baseline
has the input's shape for one spectrum and for a stack, the axis order does not matter, unknown
names and bad shapes raise a ParameterError. Recovery: a known baseline under known peaks, with
noise, is found again within the noise (tolerances in noise standard deviations).
"""
from __future__ import annotations

import numpy as np
import pytest

from specproc.core.errors import ParameterError
from specproc.fitting.baselines import REGISTRY, baseline, names, shirley_from_peaks, tougaard_kernel

OPTIONS = {"snip": {"max_half_window": 40}, "polynomial": {"degree": 1}}


def _signal(rng, m=400):
    x = np.linspace(10.0, 60.0, m)
    y = 50 + 200 * x ** -0.8 + 30 * np.exp(-(x - 35) ** 2 / 2) + rng.normal(0, 0.2, m)
    return x, y


def test_registry_lists_the_families():
    for name in ("none", "linear", "shirley", "tougaard", "power_law", "exponential", "polynomial",
                 "asls", "arpls", "snip", "modpoly", "rubberband"):
        assert name in names() and REGISTRY[name].description


@pytest.mark.parametrize("method", names())
def test_contract(method):
    rng = np.random.default_rng(abs(hash(method)) % 2 ** 32)
    x, y = _signal(rng)
    Y = np.stack([y, y * 1.1 + 2])
    kw = OPTIONS.get(method, {})
    y0, Y0 = y.copy(), Y.copy()
    b1, info = baseline(x, y, method, **kw)
    bs, _ = baseline(x, Y, method, **kw)
    br, _ = baseline(x[::-1], y[::-1], method, **kw)
    assert np.array_equal(y, y0) and np.array_equal(Y, Y0), "input mutated"
    assert b1.shape == y.shape and bs.shape == Y.shape and info["method"] == method
    assert np.all(np.isfinite(b1)) and np.all(np.isfinite(bs))
    assert np.allclose(bs[0], b1, rtol=1e-6, atol=1e-6 * np.ptp(y)), "a stack row differs from the spectrum alone"
    assert np.allclose(br[::-1], b1, rtol=1e-6, atol=1e-6 * np.ptp(y)), "axis order changed the baseline"


def test_bad_input_is_a_parameter_error():
    x = np.linspace(0, 1, 20)
    with pytest.raises(ParameterError, match="unknown baseline method"):
        baseline(x, x, "no-such-method")
    with pytest.raises(ParameterError, match="20 points"):
        baseline(x, np.ones(19), "linear")
    with pytest.raises(ParameterError, match="at least 3"):
        baseline(x[:2], x[:2], "shirley")
    with pytest.raises(ParameterError, match="bogus"):
        baseline(x, x, "asls", bogus=1)
    with pytest.raises(ParameterError, match="U2 or U3"):
        baseline(x, x, "tougaard", kind="U9")


def test_any_pybaselines_method_by_name():
    rng = np.random.default_rng(1)
    x, y = _signal(rng)
    b, info = baseline(x, y, "iasls")          # not listed, still a pybaselines method
    assert b.shape == y.shape and info["method"] == "iasls"


@pytest.mark.parametrize("method,kw", [("asls", {"lam": 1e7, "p": 0.002}), ("arpls", {"lam": 1e7}),
                                       ("snip", {"max_half_window": 40}), ("modpoly", {"poly_order": 2}),
                                       ("airpls", {"lam": 1e7})])
def test_smooth_baseline_under_peaks_recovered(method, kw):
    """A quadratic baseline under three narrow peaks (noise sigma 0.02): recovered where there is no
    peak within 4 noise SDs (RMS), and under the peaks within 10 SDs."""
    rng = np.random.default_rng(2)
    x = np.linspace(0, 100, 2000)
    t = x / 100
    truth = 1.0 + 0.6 * t - 0.9 * t ** 2
    peaks = sum(a * np.exp(-(x - c) ** 2 / (2 * w ** 2)) for a, c, w in ((3, 25, 0.8), (2, 55, 1.2), (4, 80, 0.6)))
    sigma = 0.02
    y = truth + peaks + rng.normal(0, sigma, x.size)
    b, _ = baseline(x, y, method, **kw)
    far = peaks < 1e-3
    assert np.sqrt(np.mean((b - truth)[far] ** 2)) < 4 * sigma
    assert np.max(np.abs(b - truth)[10:-10]) < 10 * sigma


def test_shirley_recovers_a_known_step():
    """Y = peak + the Shirley step of that peak: the iteration's fixed point is that step; found within
    the end levels' noise (n_avg channels averaged)."""
    rng = np.random.default_rng(3)
    x = np.linspace(280, 300, 801)              # binding energy, eV
    peak = 1000 * np.exp(-(x - 288) ** 2 / (2 * 0.6 ** 2)) + 400 * np.exp(-(x - 291) ** 2 / (2 * 0.8 ** 2))
    lo, hi = 100.0, 260.0
    step = shirley_from_peaks(x, peak, lo, hi)
    sigma = 2.0
    y = peak + step + rng.normal(0, sigma, x.size)
    n_avg = 20
    b, info = baseline(x[::-1], y[::-1], "shirley", n_avg=n_avg)
    assert info["converged"].all()
    assert np.max(np.abs(b[::-1] - step)) < 5 * sigma / np.sqrt(n_avg) + 0.5


def test_tougaard_recovers_the_cross_section_scale():
    """A measured spectrum J made of a peak and its own inelastic tail, J = P + B K*J (Tougaard's
    model, solved exactly): the fitted scale meets the high end, so it is B, and the background is
    B K*J within the noise."""
    rng = np.random.default_rng(4)
    x = np.linspace(270, 420, 1501)             # binding energy, eV
    peak = 5000 * np.exp(-(x - 285) ** 2 / (2 * 0.8 ** 2))
    w = np.zeros_like(x)
    w[:-1] += np.diff(x) / 2
    w[1:] += np.diff(x) / 2
    K = tougaard_kernel(x[:, None] - x[None, :], 1.0) * w[None, :]
    B_true = 2866.0
    J = np.linalg.solve(np.eye(x.size) - B_true * K, peak)
    sigma = 1.0
    b, info = baseline(x[::-1], (J + rng.normal(0, sigma, x.size))[::-1], "tougaard", kind="U2", n_avg=25)
    assert info["scale"][0] == pytest.approx(B_true, rel=0.01)
    assert np.max(np.abs(b[::-1] - B_true * (K @ J))) < 3 * sigma


def test_power_law_window_fit_extrapolates_within_its_error():
    """EELS pre-edge: A E^-r fitted in a window before an edge, extrapolated under it; the background at
    the edge is the truth within 4 of its reported standard errors, for 40 noisy spectra."""
    rng = np.random.default_rng(5)
    E = np.linspace(150, 260, 550)
    A = rng.uniform(1e9, 3e9, 40)
    r = rng.uniform(2.8, 3.6, 40)
    truth = A[:, None] * E[None, :] ** -r[:, None]
    edge = np.where(E > 188, 200.0 * (1 - np.exp(-(E - 188) / 10)), 0.0)
    Y = rng.poisson(truth + edge).astype(float)
    W = 1 / np.sqrt(np.maximum(Y, 1))
    b, info = baseline(E, Y, "power_law", window=(150, 185), at=(188.0,), weights=W)
    val, se = info["at"][188.0]
    true_at = A * 188.0 ** -r
    z = (val - true_at) / se
    assert np.all(info["ok"]) and np.all(np.abs(z) < 4) and 0.5 < np.std(z) < 2.0
    assert np.allclose(info["values"]["bg_exponent"], -r, atol=5 * np.max(info["stderr"]["bg_exponent"]))
    win = E < 185  # the fitted curve is far closer to the truth than one channel's counting noise
    assert np.all(np.abs(b - truth)[:, win] < 2 * np.sqrt(truth[:, win]))


def test_polynomial_and_linear_exact_on_noiseless_data():
    x = np.linspace(-3, 7, 300)
    quad = 2 - 0.5 * x + 0.25 * x ** 2
    y = quad + np.where(x > 4, 10 * np.exp(-(x - 5.5) ** 2), 0.0)
    b, info = baseline(x, y, "polynomial", degree=2, window=(-3, 3.5))
    assert np.allclose(b, quad, atol=1e-6) and info["window"] == (-3.0, 3.5)
    line = 1 + 2 * x
    b, _ = baseline(x, line, "linear", n_avg=1)
    assert np.allclose(b, line)
