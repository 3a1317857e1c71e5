import numpy as np
import pytest

import specproc as sp
from specproc.core.measurement import new_measurement

SF = 128.38  # 11B Larmor (MHz) of the synthetic field


def _mrsim(cq_hz, eta, iso, sigma_ppm, noise, seed=0, n=1000):
    pytest.importorskip("mrsimulator")
    from mrsimulator import Simulator, Site, SpinSystem
    from mrsimulator.method.lib import BlochDecayCTSpectrum
    from mrsimulator.spin_system.isotope import Isotope
    from mrsimulator.spin_system.tensors import SymmetricTensor
    from scipy.ndimage import gaussian_filter1d

    x = np.linspace(80, -20, n)
    dx = x[0] - x[1]
    b0 = SF / Isotope(symbol="11B").gyromagnetic_ratio
    site = Site(isotope="11B", isotropic_chemical_shift=iso, quadrupolar=SymmetricTensor(Cq=cq_hz, eta=eta))
    meth = BlochDecayCTSpectrum(channels=["11B"], magnetic_flux_density=b0, rotor_frequency=1e9,
                                spectral_dimensions=[{"count": n, "spectral_width": n * dx * SF,
                                                      "reference_offset": 30 * SF}])
    sim = Simulator(spin_systems=[SpinSystem(sites=[site])], methods=[meth])
    sim.run()
    ds = sim.methods[0].simulation
    ppm, y = ds.x[0].coordinates.value, np.real(ds.y[0].components[0])
    y = gaussian_filter1d(y, sigma_ppm / dx)
    y = np.interp(x[::-1], ppm, y)[::-1]
    y = y / y.max() + noise * np.random.default_rng(seed).standard_normal(n)
    return new_measurement(y, {"shift": (x, "ppm")}, technique="nmr", sample="q", metadata={"nucleus": "11B"},
                           acquisition=dict(sf_mhz=SF))


def test_recover_cq_eta_shift():
    m = _mrsim(2.6e6, 0.3, 30.0, 0.3, 0.01)
    fit = sp.nmr.deconvolve(m, peaks=[{"name": "N2BH", "center": 25.0, "shape": "quadrupolar", "cq_mhz": 2.2,
                                       "eta": 0.5}])
    row = fit.table.iloc[0]
    assert abs(row["cq_mhz"] - 2.6) < 0.05 * 2.6
    assert abs(row["center_ppm"] - 30.0) < 0.5
    assert not row["unconstrained"] and not fit.warnings
    assert "N2BH.cq_mhz" in fit.quantities


def test_broadening_dominated_line_is_flagged():
    m = _mrsim(0.3e6, 0.3, 30.0, 1.5, 0.01)
    fit = sp.nmr.deconvolve(m, peaks=[{"name": "N2BH", "center": 30.0, "shape": "quadrupolar", "cq_mhz": 1.0}])
    assert bool(fit.table.iloc[0]["unconstrained"])
    assert any("not constrained" in w for w in fit.warnings)


def test_fwhm_stderr_is_real():
    """The FWHM stderr is propagated from the covariance (not 0) and matches the scatter over noise."""
    peaks = [{"name": "N2BH", "center": 25.0, "shape": "quadrupolar", "cq_mhz": 2.2, "eta": 0.5}]
    vals, errs = [], []
    for seed in range(8):
        q = sp.nmr.deconvolve(_mrsim(2.6e6, 0.3, 30.0, 0.3, 0.01, seed=seed), peaks=peaks).quantities["N2BH.fwhm_ppm"]
        assert q.stderr is not None and 0 < q.stderr < 0.05 * q.value
        vals.append(q.value)
        errs.append(q.stderr)
    # measured: median stderr 0.034 ppm, scatter over 12 seeds 0.017, Monte-Carlo refits 0.046
    assert 0.5 < np.median(errs) / np.std(vals, ddof=1) < 3.5


def test_no_module_state_between_fits():
    """Two quadrupolar fits of different nuclei / frequencies do not share context."""
    from specproc.techniques.nmr import quadrupolar

    assert not any(isinstance(v, dict) and not k.startswith("__") for k, v in vars(quadrupolar).items()
                   if k.isupper() or k.startswith("_C"))
    m = _mrsim(2.6e6, 0.3, 30.0, 0.3, 0.01)
    fit = sp.nmr.deconvolve(m, peaks=[{"name": "Q", "center": 25.0, "shape": "quadrupolar", "cq_mhz": 2.2}])
    m2 = m.copy()
    m2.attrs["acquisition"] = dict(m.attrs["acquisition"], sf_mhz=2 * SF)  # another field: another context
    fit2 = sp.nmr.deconvolve(m2, peaks=[{"name": "Q", "center": 25.0, "shape": "quadrupolar", "cq_mhz": 2.2}])
    assert fit.table.iloc[0]["fwhm_ppm"] == pytest.approx(
        sp.nmr.deconvolve(m, peaks=[{"name": "Q", "center": 25.0, "shape": "quadrupolar", "cq_mhz": 2.2}]).table.iloc[0]["fwhm_ppm"])
    assert np.isfinite(fit2.table.iloc[0]["fwhm_ppm"])
