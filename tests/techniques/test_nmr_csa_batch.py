"""The CSA model in the batch engine (issue #27): the interpolated sideband manifold against the
exact one, the vectorised kernel's values and derivatives against csa() and finite differences,
and a stack of CSA spectra fitted in one batch call recovering known truths."""
import numpy as np
import pytest

import specproc as sp
from specproc.core.measurement import new_measurement
from specproc.fitting.nmr_models import csa, csa_manifold, csa_manifold_interp, csa_sidebands, d_csa

SF, MAS = 100.6, 5000.0


def test_manifold_derivatives_are_exact():
    eta, rho = np.array([0.3, 0.7, 0.05]), np.array([2.0, -1.2, 0.6])
    o, I, dE, dR = csa_manifold(eta, rho, deriv=True)
    h = 1e-6
    assert np.allclose(I.sum(axis=1), 1.0, atol=1e-12)
    assert np.abs((csa_manifold(eta + h, rho)[1] - I) / h - dE).max() < 1e-5
    assert np.abs((csa_manifold(eta, rho + h)[1] - I) / h - dR).max() < 1e-5
    # one row is csa_sidebands (the single-spectrum path)
    o1, i1 = csa_sidebands(0.3, 2.0)
    full = dict(zip(o, I[0]))
    assert max(abs(full[k] / I[0].sum() - v) for k, v in zip(o1, i1)) < 1e-12


def test_interpolated_manifold_matches_the_exact_one():
    rng = np.random.default_rng(0)
    eta, rho = rng.uniform(0, 1, 60), rng.uniform(-3, 3, 60)
    eta[:3], rho[:3] = [0.0, 1.0, 0.999], [0.0, 0.01, -2.99]
    o, I, dE, dR = csa_manifold_interp(eta, rho)
    oe, Ie, dEe, dRe = csa_manifold(eta, rho, deriv=True)
    pos = {k: i for i, k in enumerate(oe)}
    cols = [pos[k] for k in o]
    assert np.allclose(I.sum(axis=1), 1.0, atol=1e-9)
    # measured: 3e-5 of each row's largest band; derivatives 1.5e-3 of the largest derivative
    assert (np.abs(I - Ie[:, cols]).max(axis=1) / Ie.max(axis=1)).max() < 2e-4
    assert np.abs(dE - dEe[:, cols]).max() < 0.02 * np.abs(dEe).max()
    assert np.abs(dR - dRe[:, cols]).max() < 0.02 * np.abs(dRe).max()


@pytest.mark.parametrize("descending", [True, False])
def test_kernel_values_and_jacobian(descending):
    x = np.linspace(250, -150, 2000) if descending else np.linspace(-150, 250, 2000)
    P = np.array([[1.0, 50, 60, 0.3, 0.8, 0.0, 49.7], [2.0, 30, -80, 0.7, 1.2, 0.0, 49.7],
                  [1.5, 40, 70, 0.5, 1.0, 0.3, 49.7], [1.0, 20, 60, 0.3, 1.5, 0.0, 0.0]])

    def run(P):
        return d_csa(x[None, :], *[P[:, k:k + 1] for k in range(7)])

    out = run(P)
    for i in range(len(P)):
        ref = csa(x, *P[i])
        assert np.abs(out[0][i] - ref).max() < 2e-3 * ref.max()   # measured 6.5e-4 (table), 0 static
    for q in range(5):   # amplitude, centre, anisotropy, eta, sigma
        h = 1e-5 * max(abs(P[0, q]), 1)
        Pp, Pm = P.copy(), P.copy()
        Pp[:, q] += h
        Pm[:, q] -= h
        num = (run(Pp)[0] - run(Pm)[0]) / (2 * h)
        for i in range(len(P)):
            assert np.abs(num[i] - out[1 + q][i]).max() < 1e-3 * max(np.abs(num[i]).max(), 1e-9), (q, i)


def _stack(n, seed=5):
    rng = np.random.default_rng(seed)
    x = np.linspace(220, -100, 1600)
    truths, ms = [], []
    for i in range(n):
        t = dict(iso=rng.uniform(59, 61), d=-70 * rng.uniform(0.95, 1.05), eta=rng.uniform(0.35, 0.5))
        y = csa(x, 1.0, t["iso"], t["d"], t["eta"], 0.8, 0.0, MAS / SF)
        y = y / y.max() + 0.01 * rng.standard_normal(x.size)
        truths.append(t)
        ms.append(new_measurement(y, {"shift": (x, "ppm")}, technique="nmr", sample=f"s{i}",
                                  metadata={"nucleus": "13C"}, acquisition=dict(sf_mhz=SF, mas_rate_hz=MAS)))
    return truths, ms


def test_stack_goes_through_the_batch_engine_and_recovers_truths():
    truths, ms = _stack(8)
    fits = sp.nmr.deconvolve(ms, peaks=[{"name": "C", "center": 60.0, "shape": "csa"}])
    assert all(f.meta["batch"]["method"] == "batched-lm" for f in fits)
    z_eta = []
    for f, t in zip(fits, truths):
        r = f.table.iloc[0]
        assert r["shape"] == "csa"
        assert abs(r["center_ppm"] - t["iso"]) < 0.05
        assert abs(r["delta_aniso_ppm"] / t["d"] - 1) < 0.05
        assert r["delta_aniso_ppm_stderr"] > 0 and r["eta_stderr"] > 0
        assert abs(r["delta_aniso_ppm"] - t["d"]) < 4 * r["delta_aniso_ppm_stderr"]
        z_eta.append(abs(r["eta"] - t["eta"]) / r["eta_stderr"])
    assert np.median(z_eta) < 1.5   # the standard errors mean what they say
    # the batch and the single-spectrum lmfit fit agree within a fraction of the error bars
    one = sp.nmr.deconvolve(ms[0], peaks=[{"name": "C", "center": 60.0, "shape": "csa"}]).table.iloc[0]
    b = fits[0].table.iloc[0]
    assert abs(one["center_ppm"] - b["center_ppm"]) < 0.5 * b["center_ppm_stderr"] + 1e-3
    assert abs(one["delta_aniso_ppm"] - b["delta_aniso_ppm"]) < 0.5 * b["delta_aniso_ppm_stderr"]
