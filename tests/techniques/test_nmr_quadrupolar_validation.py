"""The quadrupolar central-transition model against mrsimulator over its parameter range (fast MAS
and static, spins 3/2 and 5/2), within 1 % of the maximum; and mrsimulator issue #465 (sign of the
isotropic shift on descending axes) guarded on both axis orientations (issue #27)."""
import numpy as np
import pytest

import specproc as sp
from specproc.core.measurement import new_measurement
from specproc.techniques.nmr.quadrupolar import ct_lineshape

pytest.importorskip("mrsimulator")


def _mrsim(iso_name, sf, iso, cq_mhz, eta, x, *, static=False, sigma=0.3):
    """mrsimulator CT spectrum on the ppm axis ``x`` (any order), Gaussian broadening ``sigma`` ppm."""
    from mrsimulator import Simulator, Site, SpinSystem
    from mrsimulator.method.lib import BlochDecayCTSpectrum
    from mrsimulator.spin_system.isotope import Isotope
    from mrsimulator.spin_system.tensors import SymmetricTensor
    from scipy.ndimage import gaussian_filter1d

    n, dx = x.size, abs(x[1] - x[0])
    b0 = sf / abs(Isotope(symbol=iso_name).gyromagnetic_ratio)
    site = Site(isotope=iso_name, isotropic_chemical_shift=iso, quadrupolar=SymmetricTensor(Cq=cq_mhz * 1e6, eta=eta))
    meth = BlochDecayCTSpectrum(channels=[iso_name], magnetic_flux_density=b0, rotor_frequency=0.0 if static else 1e9,
                                spectral_dimensions=[{"count": n, "spectral_width": n * dx * sf,
                                                      "reference_offset": (x.max() + x.min()) / 2 * sf}])
    sim = Simulator(spin_systems=[SpinSystem(sites=[site])], methods=[meth])
    sim.config.integration_density = 120
    sim.run()
    ds = sim.methods[0].simulation
    ppm, y = ds.x[0].coordinates.value, np.real(ds.y[0].components[0])
    o = np.argsort(ppm)
    ppm, y = ppm[o], gaussian_filter1d(y[o], sigma / dx, mode="constant")
    return np.interp(x, ppm, y)


def _maxdev(model, ref):
    a = (model @ ref) / (model @ model)
    return float(np.max(np.abs(a * model - ref)) / ref.max())


CASES = [("11B", 128.38, 20.0, 1.5, 0.1), ("11B", 128.38, 29.0, 2.828, 0.41), ("11B", 128.38, -5.0, 3.5, 0.9),
         ("11B", 128.38, 10.0, 2.0, 1.0), ("27Al", 104.26, 60.0, 5.0, 0.3), ("27Al", 104.26, 10.0, 8.0, 0.7)]


@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("nuc,sf,iso,cq,eta", CASES)
def test_ct_matches_mrsimulator(nuc, sf, iso, cq, eta, static):
    from specproc.fitting.nmr_models import _spin_factor, spin_of

    # the CT spans ~1.1 (MAS) / ~3.3 (static) x f(I) CQ^2/nu0; broadening 3 % of that, 600 points across it
    width = (cq * 1e6) ** 2 / (sf * 1e6) ** 2 * 1e6 * _spin_factor(int(2 * spin_of(nuc))) * (3.3 if static else 1.1)
    x = np.linspace(iso + 0.6 * width + 3, iso - 1.4 * width - 3, 1200)   # descending, as spectra are
    ref = _mrsim(nuc, sf, iso, cq, eta, x, static=static, sigma=0.03 * width)
    model = ct_lineshape(x, 1.0, iso, cq, eta, 0.03 * width, isotope=nuc, larmor_mhz=sf, static=static)
    assert _maxdev(model, ref) < 0.01          # measured 0.01-0.11 % of the maximum


def test_axis_orientation_gives_the_same_line():
    x = np.linspace(80, -20, 1001)
    a = ct_lineshape(x, 1.0, 29.0, 2.8, 0.4, 0.3, isotope="11B", larmor_mhz=128.38)
    b = ct_lineshape(x[::-1], 1.0, 29.0, 2.8, 0.4, 0.3, isotope="11B", larmor_mhz=128.38)
    assert np.allclose(a, b[::-1], rtol=0, atol=1e-12 * a.max())


@pytest.mark.parametrize("descending", [True, False])
def test_isotropic_shift_sign_on_both_orientations(descending):
    """mrsimulator #465: the fitted isotropic shift is +29 ppm (not -29) on either axis direction."""
    x = np.linspace(80, -20, 1000)
    y = _mrsim("11B", 128.38, 29.0, 2.828, 0.41, x)
    y = y / y.max() + 0.01 * np.random.default_rng(1).standard_normal(x.size)
    if not descending:
        x, y = x[::-1], y[::-1]
    m = new_measurement(y, {"shift": (x, "ppm")}, technique="nmr", sample="q", metadata={"nucleus": "11B"},
                        acquisition=dict(sf_mhz=128.38))
    fit = sp.nmr.deconvolve(m, peaks=[{"name": "N2BH", "center": 25.0, "shape": "quadrupolar", "cq_mhz": 2.2}])
    row = fit.table.iloc[0]
    assert abs(row["center_ppm"] - 29.0) < 0.2
    assert abs(row["cq_mhz"] / 2.828 - 1) < 0.02 and abs(row["eta"] - 0.41) < 0.05


@pytest.mark.parametrize("static", [False, True])
def test_site_model_fits_static_and_mas_from_a_width_start(static):
    """The site model of the deconvolution (make_lmfit_model), static or fast MAS, from a start CQ
    inverted from the measured width (no CQ given), recovers the truth."""
    from specproc.techniques.nmr.deconvolution import QuadSite
    from specproc.techniques.nmr.quadrupolar import make_lmfit_model

    x = np.linspace(120, -150, 2000) if static else np.linspace(60, -20, 1200)
    y = _mrsim("11B", 128.38, 29.0, 2.6, 0.3, x, static=static, sigma=0.5)
    y = y / y.max() + 0.01 * np.random.default_rng(4).standard_normal(x.size)
    above = x[y > 0.5 * y.max()]
    w = float(above.max() - above.min())
    dx = abs(x[1] - x[0])
    site = QuadSite(name="Q", center=float(x[np.argmax(y)]) + (5.0 if not static else 0.0))
    model, p, ctx = make_lmfit_model("Q_", "11B", 128.38, x, y, site, w, (site.center - 30, site.center + 30), dx,
                                     float(np.ptp(x)), 0.0, None, static=static)
    assert ctx["static"] is static
    r = model.fit(y, p, x=x)
    assert abs(r.params["Q_cq_mhz"].value / 2.6 - 1) < 0.02
    assert abs(r.params["Q_center"].value - 29.0) < 0.3
    assert abs(r.params["Q_eta"].value - 0.3) < 0.05
