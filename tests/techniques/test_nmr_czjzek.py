"""Czjzek-distributed quadrupolar central transition: the precomputed kernel against
mrsimulator's CzjzekDistribution (hundreds of spin systems), and its use in deconvolution."""
import numpy as np
import pytest

import specproc as sp
from specproc.core.measurement import new_measurement
from specproc.fitting.nmr_models import czjzek, czjzek_density

SF = 128.38  # 11B Larmor (MHz)


def _mrsim_czjzek(iso, sigma_mhz, rate_hz, *, n=1024, lo=-60.0, hi=60.0, sigma=0.5, n_cq=80, n_eta=11):
    """mrsimulator's Czjzek model the usual way: pdf on a (CQ, eta) grid -> one spin system per point."""
    pytest.importorskip("mrsimulator")
    from mrsimulator import Simulator
    from mrsimulator.method.lib import BlochDecayCTSpectrum
    from mrsimulator.models import CzjzekDistribution
    from mrsimulator.spin_system.isotope import Isotope
    from mrsimulator.utils.collection import single_site_system_generator
    from scipy.ndimage import gaussian_filter1d

    dx = (hi - lo) / (n - 1)
    b0 = SF / abs(Isotope(symbol="11B").gyromagnetic_ratio)
    cq = np.linspace(0, 8 * sigma_mhz, n_cq + 1)[1:]
    eta = np.linspace(0, 1, n_eta)
    _, _, amp = CzjzekDistribution(sigma_mhz).pdf(pos=[cq, eta])
    amp = amp.T
    CQ, ETA = np.meshgrid(cq, eta, indexing="ij")
    keep = amp > amp.max() * 1e-4
    systems = single_site_system_generator(isotope="11B", isotropic_chemical_shift=iso,
                                           quadrupolar={"Cq": CQ[keep] * 1e6, "eta": ETA[keep]}, abundance=amp[keep])
    meth = BlochDecayCTSpectrum(channels=["11B"], magnetic_flux_density=b0, rotor_frequency=rate_hz,
                                spectral_dimensions=[{"count": n, "spectral_width": n * dx * SF,
                                                      "reference_offset": (hi + lo) / 2 * SF}])
    sim = Simulator(spin_systems=systems, methods=[meth])
    sim.config.integration_density = 70
    sim.run()
    ds = sim.methods[0].simulation
    ppm, y = ds.x[0].coordinates.value, np.real(ds.y[0].components[0])
    y = gaussian_filter1d(y, sigma / abs(ppm[1] - ppm[0]), mode="constant")
    o = np.argsort(ppm)
    return ppm[o], y[o]


def _maxdev(model, ref):
    a = (model @ ref) / (model @ model)
    return float(np.max(np.abs(a * model - ref)) / ref.max())


def test_density_is_mrsimulators():
    pytest.importorskip("mrsimulator")
    from mrsimulator.models import CzjzekDistribution

    cq, eta = np.linspace(0, 16, 161)[1:], np.linspace(0, 1, 21)
    _, _, a = CzjzekDistribution(1.0).pdf(pos=[cq, eta])
    C, E = np.meshgrid(cq, eta, indexing="ij")
    b = czjzek_density(C, E)
    b[:, -1] /= 2  # mrsimulator halves the eta = 1 row of its grid
    assert np.allclose(a.T / a.sum(), b / b.sum(), rtol=1e-9, atol=1e-15)
    # and its random variates (the definition): mean |CQ| / sigma
    z, _ = CzjzekDistribution(1.0).rvs(200000)
    assert abs(np.abs(z).mean() / ((b * C).sum() / b.sum()) - 1) < 0.01


@pytest.mark.parametrize("iso,sig,rate,static", [(10.0, 0.5, 1e9, False), (10.0, 0.5, 0.0, True),
                                                 (-5.0, 0.4, 1e9, False)])
def test_kernel_matches_mrsimulator_distribution(iso, sig, rate, static):
    ppm, ref = _mrsim_czjzek(iso, sig, rate)
    model = czjzek(ppm, 1.0, iso, sig, 0.5, 0.0, SF, 1.5, 0.0 if static else 100.0)
    # measured: 0.2-0.5 % of the maximum (mrsimulator on its own 80 x 11 grid)
    assert _maxdev(model, ref) < 0.01


def test_scaling_with_sigma_and_field():
    """One kernel: the line of sigma at field B is the sigma=1 line scaled by sigma^2 / larmor^2."""
    x = np.linspace(-2000, 600, 26001)
    a = czjzek(x, 1.0, 0.0, 2.0, 0.0, 0.0, 200.0, 1.5, 10.0)   # sigma^2 / larmor^2 = 1e-4
    b = czjzek(x, 1.0, 0.0, 1.0, 0.0, 0.0, 100.0, 1.5, 10.0)   # the same
    c = czjzek(x / 4, 1.0, 0.0, 1.0, 0.0, 0.0, 200.0, 1.5, 10.0)  # 4x narrower on a 4x finer axis
    assert np.allclose(a, b, rtol=1e-12, atol=1e-15)
    assert np.allclose(c, 4 * a, rtol=1e-9, atol=1e-9 * a.max())
    assert abs(np.trapezoid(a, x) - 1) < 1e-3


def _measurement(x, y, mas):
    return new_measurement(y, {"shift": (x, "ppm")}, technique="nmr", sample="q", metadata={"nucleus": "11B"},
                           acquisition=dict(sf_mhz=SF, mas_rate_hz=mas))


@pytest.mark.parametrize("descending", [True, False])
def test_fit_recovers_sigma_and_isotropic_shift(descending):
    """Recovery on both axis orientations (mrsimulator #465 concerns the sign of the mean isotropic
    shift of a Czjzek fit on descending axes)."""
    x = np.linspace(60, -80, 1400)
    y = czjzek(x, 100, 25.0, 0.6, 0.4, 0, SF, 1.5, 10000 / SF)
    y = y + np.random.default_rng(0).standard_normal(x.size) * y.max() / 100
    if not descending:
        x, y = x[::-1], y[::-1]
    fit = sp.nmr.deconvolve(_measurement(x, y, 10000.0), peaks=[{"name": "Q", "center": 20.0, "shape": "czjzek"}])
    row = fit.table.iloc[0]
    assert abs(row["center_ppm"] - 25.0) < 0.2
    assert abs(row["sigma_mhz"] / 0.6 - 1) < 0.02 and row["sigma_mhz_stderr"] > 0
    assert not fit.warnings


def test_fit_of_mrsimulator_czjzek():
    ppm, ref = _mrsim_czjzek(10.0, 0.5, 1e9, lo=-80, hi=40)
    y = ref / ref.max() + 0.01 * np.random.default_rng(2).standard_normal(ppm.size)
    fit = sp.nmr.deconvolve(_measurement(ppm[::-1], y[::-1], 30000.0), peaks=[{"name": "Q", "center": 5.0,
                                                                             "shape": "czjzek"}])
    row = fit.table.iloc[0]
    assert abs(row["center_ppm"] - 10.0) < 0.3 and abs(row["sigma_mhz"] / 0.5 - 1) < 0.05


def test_needs_a_quadrupolar_nucleus():
    x = np.linspace(60, -80, 500)
    m = new_measurement(np.exp(-x ** 2), {"shift": (x, "ppm")}, technique="nmr", sample="q",
                        metadata={"nucleus": "13C"}, acquisition=dict(sf_mhz=100.0))
    with pytest.raises(sp.SpecprocError if hasattr(sp, "SpecprocError") else Exception, match="quadrupolar"):
        sp.nmr.deconvolve(m, peaks=[{"name": "Q", "center": 0.0, "shape": "czjzek"}])
