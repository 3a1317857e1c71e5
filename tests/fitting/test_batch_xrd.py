"""fit_batch's lmfit-loop fallback agrees with its batched path on an XRD-like peak.

Regression (found by the XRD owner): lmfit maps a bounded parameter to
u = arcsin(2 (v - min)/(max - min) - 1) and MINPACK's finite-difference step is sqrt(eps)*|u|.
When a per-dataset start lies at the midpoint of symmetric bounds up to rounding (a 2θ grid
value 26.17999999999976 with bounds 26.18 ± 0.4), |u| ~ 6e-13, the step underflows and the
centre stays frozen at its start. specproc.fitting.models.unfreeze_centers now guards every
lmfit fit; without it this test fails by 0.014°.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lmfit")

from specproc.fitting.batch import fit_batch  # noqa: E402
from specproc.fitting.models import ModelSpec, Peak  # noqa: E402


def _stack():
    x = np.arange(25.5, 26.9, 0.02)
    rng = np.random.default_rng(7)
    from specproc.fitting.lineshapes import pseudo_voigt

    true_c = np.array([26.166, 26.171, 26.176])
    Y = np.array([pseudo_voigt(x, 100.0, c, 0.026, 0.5) + 20 for c in true_c])
    Y = rng.poisson(Y * 10) / 10.0
    return x, Y, true_c


def test_lmfit_loop_fallback_does_not_freeze_midpoint_start():
    x, Y, true_c = _stack()
    spec = ModelSpec(peaks=[Peak(name="p0", center=26.18, fwhm=0.2, bounds={"center": (26.18 - 0.4, 26.18 + 0.4)})],
                     baseline="linear")
    start = x[np.argmin(np.abs(x - 26.18))]          # 26.17999999999976: a grid value, not exactly 26.18
    init = {"p0_center": np.full(len(Y), start)}
    b = fit_batch(spec, x, Y, init=init, method="batched-lm")
    np.testing.assert_allclose(b.p0_center.values, true_c, atol=2e-3)  # the engine is right
    lm = fit_batch(spec, x, Y, init=init, method="lmfit-loop", n_jobs=1)
    # contract: centres within 1e-3 axis units of the batched path
    np.testing.assert_allclose(lm.p0_center.values, b.p0_center.values, atol=1e-3)
