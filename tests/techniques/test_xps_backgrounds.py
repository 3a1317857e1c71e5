"""XPS backgrounds against hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from specproc.techniques.xps import backgrounds as bgs


def test_linear_hand_case():
    x = np.array([10.0, 8.0, 6.0, 4.0, 2.0, 0.0])  # descending BE, like most files
    y = np.array([30.0, 99.0, 99.0, 99.0, 99.0, 10.0])
    b = bgs.linear(x, y, n_avg=1)
    # straight line from (0, 10) to (10, 30): 10 + 2 x
    assert b == pytest.approx(10 + 2 * x)


def test_shirley_rectangle_gives_a_ramp():
    """A rectangular peak on a Shirley step: the background under it is the straight ramp between the
    two levels (the area to the low-BE side grows linearly), flat outside. Hand-computed."""
    x = np.linspace(0, 10, 2001)
    lo, hi, h = 100.0, 160.0, 500.0
    P = np.where((x >= 4) & (x <= 6), h, 0.0)
    frac = np.clip((x - 4) / 2, 0, 1)
    truth = lo + (hi - lo) * frac
    b, info = bgs.shirley(x[::-1], (truth + P)[::-1], n_avg=1, return_info=True)
    assert info["converged"].all()
    assert b[::-1] == pytest.approx(truth, abs=0.3)  # corners of the rectangle: one grid step
    assert b[::-1][x < 3.9] == pytest.approx(lo) and b[::-1][x > 6.1] == pytest.approx(hi)


def test_shirley_is_self_consistent_and_batched():
    x = np.linspace(280, 295, 301)
    rng = np.random.default_rng(3)
    Ys, truths = [], []
    for _ in range(5):
        c, w, a = rng.uniform(285, 290), rng.uniform(0.8, 2), rng.uniform(500, 5000)
        P = a * np.exp(-4 * np.log(2) * ((x - c) / w) ** 2)
        lo, hi = rng.uniform(50, 200), rng.uniform(0, 0.3) * a
        B = bgs.shirley_from_peaks(x, P, lo, lo + hi)
        Ys.append(P + B)
        truths.append(B)
    got = bgs.shirley(x, np.array(Ys), n_avg=1, tol=1e-9)
    assert got == pytest.approx(np.array(truths), rel=1e-6, abs=1e-6)


def test_shirley_on_noise_stays_between_the_ends():
    x = np.linspace(180, 195, 151)
    y = np.random.default_rng(0).poisson(400, (3, x.size)).astype(float)
    b = bgs.shirley(x, y, n_avg=5)
    lo, hi = y[:, -5:].mean(axis=1), y[:, :5].mean(axis=1)  # x ascending: first = low BE
    lo, hi = y[:, :5].mean(axis=1), y[:, -5:].mean(axis=1)
    assert np.all(b >= np.minimum(lo, hi)[:, None] - 1e-9) and np.all(b <= np.maximum(lo, hi)[:, None] + 1e-9)


def test_tougaard_spike_hand_values():
    """A spike of area A at BE E0: B(E) = A * K(E - E0) on the high-BE side, 0 below (unscaled U2/U3)."""
    dx = 0.5
    x = np.arange(0, 60 + dx / 2, dx)
    j0 = int(np.argmin(np.abs(x - 20.0)))
    A = 1000.0
    y = np.zeros_like(x)
    y[j0] = A / dx
    y[0] = y[1] = 0.0
    b2 = bgs.tougaard(x, y, "U2", n_avg=1, fit_scale=False)
    i10 = int(np.argmin(np.abs(x - 30.0)))   # T = 10 eV
    # U2: K = B T / (C + T^2)^2 = 2866*10 / (1643 + 100)^2 = 0.00943368...
    k2 = 28660.0 / 1743.0 ** 2
    assert k2 == pytest.approx(0.0094337, rel=1e-4)
    assert b2[i10] == pytest.approx(A * k2, rel=1e-9)
    assert np.all(b2[x < 20.0] == 0)
    b3 = bgs.tougaard(x, y, "U3", n_avg=1, fit_scale=False)
    # U3 (C' = -1): K = B T / ((C - T^2)^2 + D T^2) = 28660 / ((551 - 100)^2 + 436*100) = 0.116032...
    k3 = 28660.0 / ((551 - 100) ** 2 + 43600)
    assert k3 == pytest.approx(0.116032, rel=1e-5)
    assert b3[i10] == pytest.approx(A * k3, rel=1e-9)


def test_tougaard_scaled_meets_high_be_end():
    x = np.linspace(520, 545, 251)
    P = 3000 * np.exp(-4 * np.log(2) * ((x - 530) / 1.5) ** 2)
    # Tougaard's background is the loss integral of the *measured* spectrum (which contains the background):
    # y = P + 100 + 0.5 * U2[y - 100], built by fixed-point iteration, so the scale to recover is 0.5
    y = P + 100.0
    for _ in range(200):
        y = P + 100 + 0.5 * bgs.tougaard(x, y, "U2", n_avg=1, fit_scale=False) - 0.5 * 100
    b, scale = bgs.tougaard(x, y, "U2", n_avg=1, return_scale=True)
    assert b[-1] == pytest.approx(y[-1], rel=1e-9)
    assert scale[()] / 2866 == pytest.approx(0.5, rel=1e-6)
    assert b == pytest.approx(y - P, rel=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="unknown background"):
        bgs.background("spline", [0, 1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="points"):
        bgs.shirley([0, 1, 2, 3], [1, 2, 3])
