"""CSA lineshape model (static powder pattern, MAS sideband manifold) against mrsimulator, and its
use as a registry component (NMR deconvolution, JSON, both axis orientations)."""
import json

import numpy as np
import pytest

import specproc as sp
from specproc.core.measurement import new_measurement
from specproc.fitting.lineshapes import REGISTRY
from specproc.fitting.nmr_models import csa, csa_sidebands, csa_static_cdf

SF = 100.6  # 13C Larmor (MHz) of the synthetic field


def _mrsim(iso, delta, eta, rate_hz, *, n=2048, lo=-150.0, hi=150.0, sigma=1.0):
    """mrsimulator spectrum (ppm ascending, Gaussian broadening ``sigma`` ppm). mrsimulator's
    ``shielding_symmetric.zeta`` is a *shielding* anisotropy: the shift anisotropy is -zeta."""
    pytest.importorskip("mrsimulator")
    from mrsimulator import Simulator, Site, SpinSystem
    from mrsimulator.method.lib import BlochDecaySpectrum
    from mrsimulator.spin_system.isotope import Isotope
    from mrsimulator.spin_system.tensors import SymmetricTensor
    from scipy.ndimage import gaussian_filter1d

    b0 = SF / Isotope(symbol="13C").gyromagnetic_ratio
    dx = (hi - lo) / (n - 1)
    site = Site(isotope="13C", isotropic_chemical_shift=iso, shielding_symmetric=SymmetricTensor(zeta=-delta, eta=eta))
    meth = BlochDecaySpectrum(channels=["13C"], magnetic_flux_density=b0, rotor_frequency=rate_hz,
                              spectral_dimensions=[{"count": n, "spectral_width": n * dx * SF,
                                                    "reference_offset": (hi + lo) / 2 * SF}])
    sim = Simulator(spin_systems=[SpinSystem(sites=[site])], methods=[meth])
    sim.config.number_of_sidebands = 256
    sim.config.integration_density = 120
    sim.run()
    ds = sim.methods[0].simulation
    ppm, y = ds.x[0].coordinates.value, np.real(ds.y[0].components[0])
    y = gaussian_filter1d(y, sigma / abs(ppm[1] - ppm[0]), mode="constant")
    o = np.argsort(ppm)
    return ppm[o], y[o]


def _maxdev(model, ref):
    a = (model @ ref) / (model @ model)  # one scale factor (mrsimulator's intensities are arbitrary)
    return float(np.max(np.abs(a * model - ref)) / ref.max())


@pytest.mark.parametrize("iso,delta,eta", [(20, 60, 0.3), (20, -60, 0.7), (0, 100, 0.0), (-30, -40, 1.0)])
def test_static_matches_mrsimulator(iso, delta, eta):
    ppm, ref = _mrsim(iso, delta, eta, 0.0)
    # measured: 0.14-0.41 % of the maximum
    assert _maxdev(csa(ppm, 1.0, iso, delta, eta, 1.0), ref) < 0.01


@pytest.mark.parametrize("iso,delta,eta,rate", [(20, 60, 0.3, 2000), (20, -80, 0.5, 1500), (5, 120, 0.2, 1000),
                                                (-10, 40, 1.0, 5000), (10, 90, 0.0, 3000)])
def test_mas_manifold_matches_mrsimulator(iso, delta, eta, rate):
    ppm, ref = _mrsim(iso, delta, eta, rate)
    # measured: 0.05-0.76 % of the maximum (slowest spinning, rho = 12, is the largest)
    assert _maxdev(csa(ppm, 1.0, iso, delta, eta, 1.0, 0.0, rate / SF), ref) < 0.01


def test_kernels_are_normalised_and_exact():
    t = np.linspace(-1.2, 1.2, 20001)
    for eta in (0.0, 0.37, 1.0):
        F = csa_static_cdf(t, eta)
        assert F[0] == 0 and F[-1] == 1 and np.all(np.diff(F) >= -1e-12)
        # mean of v = 0 (traceless): integral of t dF
        assert abs(np.sum(0.5 * (t[1:] + t[:-1]) * np.diff(F))) < 1e-4
    o, i = csa_sidebands(0.3, 4.0)
    assert abs(i.sum() - 1) < 1e-6 and o[np.argmax(i)] in (-1, 0, 1)
    # fast spinning: everything in the centre band
    o, i = csa_sidebands(0.5, 0.01)
    assert i[o == 0][0] > 0.999


def test_registry_entry():
    ls = REGISTRY["csa"]
    assert ls.intensity == "amplitude" and "rate_ppm" in ls.context
    x = np.linspace(200, -200, 4001)
    y = sp.fitting.lineshapes.evaluate("csa", x, amplitude=3.0, center=10, delta_aniso_ppm=50, eta=0.2, sigma=1.0)
    assert abs(np.trapezoid(y, x[::-1][::-1]) * -1 - 3.0) < 0.01  # area-normalised (descending axis)


def _measurement(x, y, mas=None, sample="c"):
    return new_measurement(y, {"shift": (x, "ppm")}, technique="nmr", sample=sample, metadata={"nucleus": "13C"},
                           acquisition=dict(sf_mhz=SF, mas_rate_hz=mas))


@pytest.mark.parametrize("descending", [True, False])
def test_isotropic_shift_sign_on_both_axis_orientations(descending):
    """mrsimulator issue #465 (the mean isotropic shift of a fit comes out with the wrong sign on a
    descending axis): the fitted isotropic shift is +60 ppm whatever the axis direction."""
    ppm, ref = _mrsim(60.0, -80.0, 0.4, 5000.0, lo=-150, hi=250, n=4000, sigma=0.8)
    ref = ref / ref.max() + 0.01 * np.random.default_rng(3).standard_normal(ppm.size)
    x, y = (ppm[::-1], ref[::-1]) if descending else (ppm, ref)
    fit = sp.nmr.deconvolve(_measurement(x, y, 5000.0), peaks=[{"name": "C", "center": 59.5, "shape": "csa"}])
    row = fit.table.iloc[0]
    assert abs(row["center_ppm"] - 60.0) < 0.05
    assert abs(row["delta_aniso_ppm"] + 80.0) < 2.0 and abs(row["eta"] - 0.4) < 0.06
    assert row["delta_aniso_ppm_stderr"] > 0 and not fit.warnings


def test_static_fit_recovers_truth():
    x = np.linspace(150, -150, 1500)
    y = csa(x, 100, 20, 60, 0.3, 1.0) + np.random.default_rng(1).standard_normal(x.size) * 0.025
    fit = sp.nmr.deconvolve(_measurement(x, y), peaks=[{"name": "C", "center": 0.0, "shape": "csa"}])
    row = fit.table.iloc[0]
    assert abs(row["center_ppm"] - 20) < 0.2 and abs(row["delta_aniso_ppm"] - 60) < 1.0 and abs(row["eta"] - 0.3) < 0.03
    assert fit.quantities["C.delta_aniso_ppm"].stderr > 0


def test_cli_json_carries_model_parameters(tmp_path, capsys):
    from specproc.cli import main

    x = np.linspace(150, -150, 1500)
    y = csa(x, 100, 20, 60, 0.3, 1.0, 0, 0) + np.random.default_rng(1).standard_normal(x.size) * 0.025
    f = tmp_path / "c.csv"
    f.write_text("# nucleus: 13C\n# sf_mhz: 100.6\nppm,intensity\n" + "\n".join(f"{a},{b}" for a, b in zip(x, y)))
    rc = main(["nmr", str(f), "--peaks=C=5", "--shape", "C=csa", "--mas-rate", "0", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    c = out[0]["components"][0]
    assert c["shape"] == "csa" and abs(c["center_ppm"] - 20) < 0.2
    assert abs(c["delta_aniso_ppm"] - 60) < 1 and c["delta_aniso_ppm_stderr"] > 0 and c["eta_stderr"] > 0
    assert main(["nmr", str(f), "--peaks=C=5", "--shape", "D=csa"]) == 2
