"""Two-field joint fits (issue #27): spectra of one sample at 9.4 T and 14.1 T from mrsimulator
(known truth) fitted with shared δiso, CQ, η; clear errors for bad input."""
import numpy as np
import pytest

from specproc.core.errors import ParameterError
from specproc.core.measurement import new_measurement
from specproc.techniques.nmr.multifield import fit_fields

pytest.importorskip("mrsimulator")
TRUTH = dict(iso=29.0, cq=2.828, eta=0.41)
FIELDS = (128.38, 192.57)  # 11B at 9.4 T and 14.1 T


def _two_site(sf, *, seed, static=False, x=None):
    """11B spectrum at ``sf`` MHz: a quadrupolar N2BH site (TRUTH) and a BH4-like narrow Gaussian at -41 ppm."""
    from mrsimulator import Simulator, Site, SpinSystem
    from mrsimulator.method.lib import BlochDecayCTSpectrum
    from mrsimulator.spin_system.isotope import Isotope
    from mrsimulator.spin_system.tensors import SymmetricTensor
    from scipy.ndimage import gaussian_filter1d

    x = np.linspace(80, -70, 1500) if x is None else x
    dx = abs(x[1] - x[0])
    b0 = sf / abs(Isotope(symbol="11B").gyromagnetic_ratio)
    site = Site(isotope="11B", isotropic_chemical_shift=TRUTH["iso"],
                quadrupolar=SymmetricTensor(Cq=TRUTH["cq"] * 1e6, eta=TRUTH["eta"]))
    meth = BlochDecayCTSpectrum(channels=["11B"], magnetic_flux_density=b0, rotor_frequency=0.0 if static else 1e9,
                                spectral_dimensions=[{"count": x.size, "spectral_width": x.size * dx * sf,
                                                      "reference_offset": (x.max() + x.min()) / 2 * sf}])
    sim = Simulator(spin_systems=[SpinSystem(sites=[site])], methods=[meth])
    sim.run()
    ds = sim.methods[0].simulation
    ppm, y = ds.x[0].coordinates.value, np.real(ds.y[0].components[0])
    o = np.argsort(ppm)
    y = gaussian_filter1d(y[o], 0.4 / dx, mode="constant")
    y = np.interp(x[::-1], ppm[o], y)[::-1]
    y = y / (y.sum() * dx)                                          # unit area
    y = y + 0.6 * np.exp(-0.5 * ((x + 41.0) / 0.8) ** 2) / (0.8 * np.sqrt(2 * np.pi))
    y = y / y.max() + 0.01 * np.random.default_rng(seed).standard_normal(x.size)
    return new_measurement(y, {"shift": (x, "ppm")}, technique="nmr", sample="LiNBH", metadata={"nucleus": "11B"},
                           acquisition=dict(sf_mhz=sf))


PEAKS = [{"name": "N2BH", "center": 20.0, "shape": "quadrupolar", "cq_mhz": 2.2, "eta": 0.5},
         {"name": "BH4", "center": -40.0, "shape": "gaussian"}]


def test_two_fields_recover_the_shared_truth():
    fit = fit_fields([_two_site(sf, seed=i) for i, sf in enumerate(FIELDS)], PEAKS)
    q = fit.quantities
    assert abs(q["N2BH.center_ppm"].value - TRUTH["iso"]) < 0.2
    assert abs(q["N2BH.cq_mhz"].value / TRUTH["cq"] - 1) < 0.02
    assert abs(q["N2BH.eta"].value - TRUTH["eta"]) < 0.05
    assert abs(q["BH4.center_ppm"].value + 41.0) < 0.05
    for k in ("N2BH.center_ppm", "N2BH.cq_mhz", "N2BH.eta"):
        assert q[k].stderr and q[k].stderr > 0
        # the error bar means what it says (3 sigma), and it is not absurdly large
        assert abs(q[k].value - {"N2BH.center_ppm": 29.0, "N2BH.cq_mhz": 2.828, "N2BH.eta": 0.41}[k]) < 4 * q[k].stderr + 0.01 * abs(q[k].value)
    # both fields' areas, one row per site and field
    assert set(fit.table["field_mhz"]) == set(FIELDS) and len(fit.table) == 4
    assert not fit.warnings, fit.warnings
    assert fit.meta["fields_mhz"] == list(FIELDS)
    assert all(s["redchi"] < 2 for s in fit.stats["fields"])


def test_static_two_fields():
    x = np.linspace(120, -150, 1500)
    fit = fit_fields([_two_site(sf, seed=3 + i, static=True, x=x) for i, sf in enumerate(FIELDS)], PEAKS, static=True)
    q = fit.quantities
    assert abs(q["N2BH.center_ppm"].value - TRUTH["iso"]) < 0.5
    assert abs(q["N2BH.cq_mhz"].value / TRUTH["cq"] - 1) < 0.02


def test_a_misfit_field_is_warned():
    a, b = _two_site(FIELDS[0], seed=0), _two_site(FIELDS[1], seed=1)
    b = b.copy()
    b.attrs["acquisition"] = dict(b.attrs["acquisition"], sf_mhz=160.0)   # wrong field: the shared model misfits
    fit = fit_fields([a, b], PEAKS)
    assert any("reduced chi-square" in w for w in fit.warnings)


def test_bad_input_is_a_parameter_error():
    a = _two_site(FIELDS[0], seed=0)
    with pytest.raises(ParameterError, match="at least two"):
        fit_fields([a], PEAKS)
    with pytest.raises(ParameterError, match="one spectrum per field"):
        fit_fields([a, a], PEAKS)
    c = a.copy()
    c.attrs["acquisition"] = dict(c.attrs["acquisition"], sf_mhz=192.57)
    c.attrs["nucleus"] = "13C"
    with pytest.raises(ParameterError):
        fit_fields([a, c], PEAKS)
    with pytest.raises(ParameterError, match="shape"):
        fit_fields([a, _two_site(FIELDS[1], seed=1)], [{"name": "X", "center": 1.0, "shape": "doublet"}])
