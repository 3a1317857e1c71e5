"""Noise-normalised fit statistics of batched fits (issue #25): ``noise_sd`` and ``redchi_noise``.

Known truth: synthetic stacks with a known noise SD. A correct model must give χ²/ν ≈ 1 with the
estimated noise as σ (within the spread the estimator and χ² statistics allow); a model missing a
line must give ≫ 1; the batched values must be the single-spectrum estimator's
(:func:`specproc.fitting.noise.noise_sigma` of the residual, as ``fit_spec`` reports it).
"""
from __future__ import annotations

import numpy as np
import pytest

from specproc.fitting.batch import evaluate_batch, fit_batch
from specproc.fitting.models import ModelSpec, Peak
from specproc.fitting.noise import noise_sigma, noise_sigma_rows

SIGMA = 0.02
N, M = 200, 1000


def _stack(seed=0, n=N, m=M, second=True):
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 100.0, m)
    c1 = 40 + rng.normal(0, 0.3, (n, 1))
    w1 = 3.0 * rng.uniform(0.9, 1.1, (n, 1))
    y = 2.0 * np.exp(-0.5 * ((x - c1) / w1) ** 2) + 0.001 * x + 0.1
    if second:
        y = y + 1.0 * np.exp(-0.5 * ((x - 65) / 2.0) ** 2)
    return x, y + rng.normal(0, SIGMA, (n, m))


def _spec(two=True):
    peaks = [Peak(name="a", shape="gaussian", center=40.0, fwhm=7.0)]
    if two:
        peaks.append(Peak(name="b", shape="gaussian", center=65.0, fwhm=4.7))
    return ModelSpec(peaks=peaks, baseline="linear")


@pytest.fixture(scope="module")
def stack_fit():
    x, Y = _stack()
    spec = _spec()
    return x, Y, spec, fit_batch(spec, x, Y)


def test_rows_equal_single_spectrum_estimator():
    rng = np.random.default_rng(3)
    for m in (3, 4, 5, 6, 51, 700):
        x = np.linspace(0, 1, m)
        Y = rng.normal(0, 1, (60, m))
        Y[:15] += 30 * np.exp(-((x - 0.5) / 0.05) ** 2)          # a line: clipped away
        Y[15:30] += 5 * x                                        # a slope: fitted away
        if m > 10:                                               # correlated noise
            Y[30:45] = [np.convolve(rng.normal(size=m + 20), np.ones(7) / 7, "same")[:m] for _ in range(15)]
        Y[45:48] = 0.0                                           # degenerate: the fallbacks
        Y[48, : m // 2] = 0.0
        for method in ("auto", "diff", "clipped"):
            got = noise_sigma_rows(Y, method)
            want = np.array([noise_sigma(y, method) for y in Y])
            np.testing.assert_allclose(got, want, rtol=1e-10, err_msg=f"m={m} {method}")
    Y = rng.normal(0, 1, (4, 3, 50))
    Y[1, 2, 7] = np.nan                                          # its finite points, like noise_sigma
    got = noise_sigma_rows(Y)
    assert got.shape == (4, 3)
    assert got[1, 2] == pytest.approx(noise_sigma(Y[1, 2]), rel=1e-12)
    with pytest.raises(ValueError):
        noise_sigma_rows(Y, "mad")


def test_correct_model_gives_redchi_noise_near_one(stack_fit):
    x, Y, spec, ds = stack_fit
    assert ds.attrs["n_failed"] == 0
    nu = M - 8                                                   # 2 Gaussians (3 each) + a line
    # the fit itself is right: χ²/ν with the TRUE σ is χ²_ν/ν (mean 1, SD sqrt(2/ν) = 0.045)
    true_rc = ds["chisqr"].values / (nu * SIGMA ** 2)
    assert abs(true_rc.mean() - 1) < 4 * np.sqrt(2 / nu / N)
    # the estimated σ: the robust estimator's spread (MAD efficiency 37 %: ~0.04 relative at m = 1000)
    ratio = ds["noise_sd"].values / SIGMA
    assert abs(ratio.mean() - 1) < 0.03 and ratio.std() < 0.05
    rc = ds["redchi_noise"].values
    # spread: χ² (0.045) and σ̂² (~2 x 0.04) -> ~0.09; mean of 200 within a few % of 1 (the estimator's
    # small upward bias, max of two estimates, pulls it a little below 1)
    assert abs(rc.mean() - 1) < 0.05, rc.mean()
    assert rc.std() < 0.12 and np.all(np.abs(rc - 1) < 0.4), (rc.std(), rc.min(), rc.max())
    # and lmfit's redchi is the residual variance, σ² in data units: not a χ²/ν
    assert np.median(ds["redchi"].values) == pytest.approx(SIGMA ** 2, rel=0.1)


def test_wrong_model_gives_redchi_noise_far_above_one():
    x, Y = _stack(seed=1, n=40)
    ds = fit_batch(_spec(two=False), x, Y)                    # the line at 65 left out
    assert np.all(ds["redchi_noise"].values > 10), ds["redchi_noise"].values.min()


def test_per_spectrum_values_are_the_single_spectrum_estimator(stack_fit):
    x, Y, spec, ds = stack_fit
    best = evaluate_batch(spec, x, ds)
    want = np.array([noise_sigma(y - b) for y, b in zip(Y, best)])
    np.testing.assert_allclose(ds["noise_sd"].values, want, rtol=1e-9)
    nu = M - 8
    np.testing.assert_allclose(ds["redchi_noise"].values, ds["chisqr"].values / (nu * want ** 2), rtol=1e-9)


def test_masks_weights_masked_rows_and_lmfit_loop():
    x, Y = _stack(seed=2, n=12)
    Y[3, 10] = np.nan                                         # a masked dataset: no statistics
    spec = _spec()
    # one 0/1 mask for all: the noise of the kept points, in order
    w = np.ones(M)
    w[300:420] = 0
    ds = fit_batch(spec, x, Y, weights=w)
    best = evaluate_batch(spec, x, ds)
    keep = w > 0
    assert np.isnan(ds["noise_sd"].values[3]) and np.isnan(ds["redchi_noise"].values[3])
    for i in (0, 5, 11):
        assert ds["noise_sd"].values[i] == pytest.approx(noise_sigma((Y[i] - best[i])[keep]), rel=1e-9)
    assert np.nanmean(ds["redchi_noise"].values) == pytest.approx(1.0, abs=0.12)
    # a mask per dataset (two patterns)
    W = np.ones((12, M))
    W[::2, 800:] = 0
    ds2 = fit_batch(spec, x, Y, weights=W)
    best2 = evaluate_batch(spec, x, ds2)
    for i in (0, 1, 4, 7):
        k = W[i] > 0
        assert ds2["noise_sd"].values[i] == pytest.approx(noise_sigma((Y[i] - best2[i])[k]), rel=1e-9)
    # 1/σ weights: the weighted χ²/ν is already normalised; no separate noise SD
    ds3 = fit_batch(spec, x, Y, weights=np.full(M, 1 / SIGMA))
    assert np.all(np.isnan(ds3["noise_sd"].values))
    good = np.isfinite(ds3["redchi_noise"].values)
    np.testing.assert_allclose(ds3["redchi_noise"].values[good], ds3["redchi"].values[good])
    assert np.mean(ds3["redchi_noise"].values[good]) == pytest.approx(1.0, abs=0.1)
    # the lmfit loop reports the same statistics
    ds4 = fit_batch(spec, x, Y[:4], method="lmfit-loop")
    best4 = evaluate_batch(spec, x, ds4)
    np.testing.assert_allclose(ds4["noise_sd"].values[:3], [noise_sigma(Y[i] - best4[i]) for i in range(3)], rtol=1e-6)
    assert np.isnan(ds4["noise_sd"].values[3])
    assert ds4["redchi_noise"].values[:3] == pytest.approx(1.0, abs=0.2)
