import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from specproc.fitting import lineshapes as ls

centers = st.floats(-50, 50)
sigmas = st.floats(0.05, 5)
amps = st.floats(0.1, 100)


def _grid(c, s):
    return np.linspace(c - 400 * s, c + 400 * s, 400001)


@settings(max_examples=25, deadline=None)
@given(amps, centers, sigmas, st.sampled_from(["gaussian", "lorentzian", "pseudo-voigt", "voigt"]))
def test_unit_area(a, c, s, shape):
    x = _grid(c, s)
    y = ls.evaluate(shape, x, amplitude=a, center=c, sigma=s)
    area = np.trapezoid(y, x)
    tol = 0.01 if shape != "gaussian" else 1e-6  # Lorentzian tails beyond 400 sigma
    assert abs(area / a - 1) < tol


@settings(max_examples=25, deadline=None)
@given(centers, sigmas, st.sampled_from(["gaussian", "lorentzian", "pseudo-voigt", "voigt"]))
def test_fwhm(c, s, shape):
    x = np.linspace(c - 20 * s, c + 20 * s, 200001)
    y = ls.evaluate(shape, x, amplitude=1.0, center=c, sigma=s)
    above = x[y >= y.max() / 2]
    assert abs((above[-1] - above[0]) / ls.fwhm(shape, s) - 1) < 2e-3


@settings(max_examples=25, deadline=None)
@given(centers, sigmas)
def test_pseudo_voigt_limits(c, s):
    x = np.linspace(c - 10 * s, c + 10 * s, 501)
    g = ls.gaussian(x, 1.0, c, s / np.sqrt(2 * np.log(2)))
    assert np.allclose(ls.pseudo_voigt(x, 1.0, c, s, 0.0), g)
    assert np.allclose(ls.pseudo_voigt(x, 1.0, c, s, 1.0), ls.lorentzian(x, 1.0, c, s))


@settings(max_examples=25, deadline=None)
@given(centers, sigmas)
def test_voigt_gamma_to_zero_is_gaussian(c, s):
    x = np.linspace(c - 6 * s, c + 6 * s, 301)
    g = ls.gaussian(x, 1.0, c, s)
    assert np.allclose(ls.voigt(x, 1.0, c, s, 1e-9), g, rtol=1e-4, atol=1e-6 * g.max())
