"""Two-field joint fits of the solid-state models (issue #27): ``csa`` (sideband manifolds at each field's
own rate in ppm), ``quadrupolar`` under finite-speed MAS (CT sidebands computed by the model, each field at
its own rate) and ``ext-czjzek``. Each recovers a generated truth (mrsimulator for CSA and the finite-speed
CT; the toolkit's ext_czjzek, validated against mrsimulator in test_nmr_ext_czjzek.py, for the extended
Czjzek site), with noise, and the joint fit pins the parameters down better than either field alone (the
same model fitted to one field, started at the truth: its smallest standard errors and its shift/coupling
correlation)."""
import numpy as np
import pytest

from specproc.core.errors import ParameterError
from specproc.core.measurement import new_measurement
from specproc.techniques.nmr.multifield import fit_fields

SNR = 100.0


def _meas(x, y, sf, nucleus, rate_hz, seed):
    y = y / y.max() + np.random.default_rng(seed).standard_normal(x.size) / SNR
    return new_measurement(y, {"shift": (x, "ppm")}, technique="nmr", sample="S", metadata={"nucleus": nucleus},
                           acquisition=dict(sf_mhz=sf, mas_rate_hz=rate_hz))


def _mrsim(site, iso, sf, x, rate, ct, sigma, sidebands=64):
    from mrsimulator import Simulator, SpinSystem
    from mrsimulator.method.lib import BlochDecayCTSpectrum, BlochDecaySpectrum
    from mrsimulator.spin_system.isotope import Isotope
    from scipy.ndimage import gaussian_filter1d

    n, dx = x.size, abs(x[1] - x[0])
    meth = (BlochDecayCTSpectrum if ct else BlochDecaySpectrum)(
        channels=[iso], magnetic_flux_density=sf / abs(Isotope(symbol=iso).gyromagnetic_ratio), rotor_frequency=rate,
        spectral_dimensions=[{"count": n, "spectral_width": n * dx * sf,
                              "reference_offset": (x.max() + x.min()) / 2 * sf}])
    sim = Simulator(spin_systems=[SpinSystem(sites=[site])], methods=[meth])
    sim.config.number_of_sidebands = sidebands
    sim.run()
    ds = sim.methods[0].simulation
    ppm, y = ds.x[0].coordinates.value, np.real(ds.y[0].components[0])
    o = np.argsort(ppm)
    y = gaussian_filter1d(y[o], sigma / dx, mode="constant")
    return np.interp(x[::-1], ppm[o], y)[::-1]


def _one_field(func, m, truth: dict, fixed: dict):
    """The same model fitted to one field alone (lmfit, from the truth): its parameters with stderr and correl."""
    import lmfit

    x, y = m.coords["shift"].values, m.values
    mod = lmfit.Model(func, independent_vars=["x"])
    p = mod.make_params(amplitude=float(y.sum() * abs(x[1] - x[0])), **truth, **fixed)
    for k in fixed:
        p[k].vary = False
    for k, (lo, hi) in {"eta": (0, 1), "eta0": (0, 1), "eps": (0.02, 3)}.items():
        if k in p:
            p[k].set(min=lo, max=hi)
    return mod.fit(y, p, x=x).params


def _covered(q, truth, k=3.0):
    for key, t in truth.items():
        assert q[key].stderr and q[key].stderr > 0, key
        assert abs(q[key].value - t) < k * q[key].stderr, (key, q[key].value, q[key].stderr, t)


# --------------------------------------------------------------------------------------------- CSA
CSA = dict(iso=60.0, d=-60.0, eta=0.45)     # |delta| / rate = 1.2 at 100.6 MHz and 1.8 at 150.9 MHz (5 kHz)
CSA_FIELDS = (100.6, 150.9)


@pytest.fixture(scope="module")
def csa_spectra():
    pytest.importorskip("mrsimulator")
    from mrsimulator import Site
    from mrsimulator.spin_system.tensors import SymmetricTensor

    site = Site(isotope="13C", isotropic_chemical_shift=CSA["iso"],
                shielding_symmetric=SymmetricTensor(zeta=-CSA["d"], eta=CSA["eta"]))
    x = np.linspace(200, -80, 1400)
    return [_meas(x, _mrsim(site, "13C", sf, x, 5000.0, False, 0.6), sf, "13C", 5000.0, 10 + i)
            for i, sf in enumerate(CSA_FIELDS)]


def test_csa_two_fields_recover_the_tensor_better_than_one(csa_spectra):
    from specproc.fitting.nmr_models import csa

    fit = fit_fields(csa_spectra, [{"name": "C", "center": CSA["iso"] + 0.3, "shape": "csa"}])
    q = fit.quantities
    assert abs(q["C.center_ppm"].value - CSA["iso"]) < 0.1
    assert abs(q["C.delta_aniso_ppm"].value / CSA["d"] - 1) < 0.02
    assert abs(q["C.eta"].value - CSA["eta"]) < 0.1          # ~3 stderr (0.03): eta is the loosest
    _covered(q, {"C.center_ppm": CSA["iso"], "C.delta_aniso_ppm": CSA["d"], "C.eta": CSA["eta"]})
    assert not fit.warnings, fit.warnings
    assert fit.meta["mas_rates_hz"] == [5000.0, 5000.0]
    assert all(s["redchi"] < 1.5 for s in fit.stats["fields"])
    # one field alone: eta and delta_aniso are looser than from both manifolds together
    singles = [_one_field(csa, m, dict(center=CSA["iso"], delta_aniso_ppm=CSA["d"], eta=CSA["eta"], sigma=0.6),
                          dict(gamma=0.0, rate_ppm=5000.0 / sf)) for m, sf in zip(csa_spectra, CSA_FIELDS)]
    assert q["C.eta"].stderr < min(p["eta"].stderr for p in singles)
    assert q["C.delta_aniso_ppm"].stderr < min(p["delta_aniso_ppm"].stderr for p in singles)


def test_csa_needs_a_rate_or_static(csa_spectra):
    a, b = (m.copy() for m in csa_spectra)
    for m in (a, b):
        m.attrs["acquisition"] = dict(m.attrs["acquisition"], mas_rate_hz=None)
    with pytest.raises(ParameterError, match="MAS rate"):
        fit_fields([a, b], [{"name": "C", "center": 60.0, "shape": "csa"}])
    with pytest.raises(ParameterError, match="one per spectrum"):
        fit_fields([a, b], [{"name": "C", "center": 60.0, "shape": "csa"}], mas_rate_hz=[5000.0])
    with pytest.raises(ParameterError, match="MAS rate"):
        fit_fields([a, b], [{"name": "C", "center": 60.0, "shape": "csa"}], mas_rate_hz=-5.0)


# ------------------------------------------------------------------- quadrupolar CT, finite-speed MAS
QUAD = dict(iso=29.0, cq=2.828, eta=0.41)
B_FIELDS = (128.38, 192.57)     # 11B at 9.4 T and 14.1 T
RATE = 5000.0                   # 38.9 and 26.0 ppm: the CT sidebands carry a few % of the area


@pytest.fixture(scope="module")
def quad_spectra():
    pytest.importorskip("mrsimulator")
    from mrsimulator import Site
    from mrsimulator.spin_system.tensors import SymmetricTensor

    site = Site(isotope="11B", isotropic_chemical_shift=QUAD["iso"],
                quadrupolar=SymmetricTensor(Cq=QUAD["cq"] * 1e6, eta=QUAD["eta"]))
    x = np.linspace(150, -100, 1250)
    return [_meas(x, _mrsim(site, "11B", sf, x, RATE, True, 0.4, 128), sf, "11B", RATE, 20 + i)
            for i, sf in enumerate(B_FIELDS)]


def test_finite_speed_ct_two_fields_separate_shift_and_coupling(quad_spectra):
    from specproc.fitting.nmr_models import ct_mas

    fit = fit_fields(quad_spectra, [{"name": "Q", "center": 25.0, "shape": "quadrupolar", "cq_mhz": 2.5}])
    q = fit.quantities
    assert abs(q["Q.center_ppm"].value - QUAD["iso"]) < 0.2
    assert abs(q["Q.cq_mhz"].value / QUAD["cq"] - 1) < 0.02
    assert abs(q["Q.eta"].value - QUAD["eta"]) < 0.05
    _covered(q, {"Q.center_ppm": QUAD["iso"], "Q.cq_mhz": QUAD["cq"], "Q.eta": QUAD["eta"]})
    assert not fit.warnings, fit.warnings
    assert all(s["redchi"] < 1.5 for s in fit.stats["fields"])   # the model's sidebands are in the data
    # the same data with the fast-MAS CT (no sidebands) misfit the sidebands: the rate is what is used
    fast = fit_fields(quad_spectra, [{"name": "Q", "center": 25.0, "shape": "quadrupolar", "cq_mhz": 2.5}],
                      mas_rate_hz=[0.0, 0.0])
    # (chi2 per point up by > 0.2 over 1,250 points: ~250 noise units, its noise is ~0.04)
    assert min(s["redchi"] for s in fast.stats["fields"]) > max(s["redchi"] for s in fit.stats["fields"]) + 0.2
    # one field alone: δiso and CQ trade off (the quadrupolar-induced shift); two fields separate them
    singles = [_one_field(ct_mas, m, dict(center=QUAD["iso"], cq_mhz=QUAD["cq"], eta=QUAD["eta"], sigma=0.4),
                          dict(gamma=0.0, larmor_mhz=sf, spin=1.5, rate_ppm=RATE / sf))
               for m, sf in zip(quad_spectra, B_FIELDS)]
    joint = fit.native.params
    corr = abs(joint["Q_center"].correl["Q_cq_mhz"])
    assert corr < min(abs(p["center"].correl["cq_mhz"]) for p in singles)
    assert q["Q.center_ppm"].stderr < min(p["center"].stderr for p in singles)
    assert q["Q.cq_mhz"].stderr < min(p["cq_mhz"].stderr for p in singles)


# ------------------------------------------------------------------------------ extended Czjzek
EXT = dict(iso=20.0, cq0=2.4, eta0=0.5, eps=0.15)


@pytest.fixture(scope="module")
def ext_spectra():
    pytest.importorskip("mrsimulator")   # the kernels are built from mrsimulator's distribution and CT library
    from specproc.fitting.nmr_models import ext_czjzek

    x = np.linspace(60, -40, 1000)
    return [_meas(x, ext_czjzek(x, 1.0, EXT["iso"], EXT["cq0"], EXT["eta0"], EXT["eps"], 0.3, 0.0, sf, 1.5, 1.0),
                  sf, "11B", None, 30 + i) for i, sf in enumerate(B_FIELDS)]


def test_ext_czjzek_two_fields_from_the_start_search(ext_spectra):
    from specproc.fitting.nmr_models import ext_czjzek

    # only the position of the maximum: CQ0, η0, ε come from the start search on both fields
    x = ext_spectra[0].coords["shift"].values
    fit = fit_fields(ext_spectra, [{"name": "E", "center": float(x[np.argmax(ext_spectra[0].values)]),
                                    "shape": "ext-czjzek"}])
    q = fit.quantities
    assert abs(q["E.center_ppm"].value - EXT["iso"]) < 0.2
    assert abs(q["E.cq0_mhz"].value / EXT["cq0"] - 1) < 0.03
    truth = {"E.center_ppm": EXT["iso"], "E.cq0_mhz": EXT["cq0"], "E.eta0": EXT["eta0"], "E.eps": EXT["eps"]}
    _covered(q, truth)
    assert not fit.warnings, fit.warnings
    singles = [_one_field(ext_czjzek, m, dict(center=EXT["iso"], cq0_mhz=EXT["cq0"], eta0=EXT["eta0"], eps=EXT["eps"],
                                              sigma=0.3), dict(gamma=0.0, larmor_mhz=sf, spin=1.5, rate_ppm=1.0))
               for m, sf in zip(ext_spectra, B_FIELDS)]
    for par in ("center", "cq0_mhz"):
        assert q[f"E.{'center_ppm' if par == 'center' else par}"].stderr < min(p[par].stderr for p in singles)
    assert abs(fit.native.params["E_center"].correl["E_cq0_mhz"]) < min(abs(p["center"].correl["cq0_mhz"])
                                                                        for p in singles)


# ------------------------------------------------------------ quadrupolar start search (fast MAS)
LOW = dict(iso=13.49, cq=1.634, eta=0.526)     # a truth whose fits from CQ 2.2 MHz fell into a local minimum


@pytest.mark.parametrize("seed", [2, 16])
def test_quadrupolar_start_search_escapes_the_local_minimum(seed, monkeypatch):
    pytest.importorskip("mrsimulator")
    from mrsimulator import Site
    from mrsimulator.spin_system.tensors import SymmetricTensor

    import specproc.techniques.nmr.multifield as mf

    site = Site(isotope="11B", isotropic_chemical_shift=LOW["iso"],
                quadrupolar=SymmetricTensor(Cq=LOW["cq"] * 1e6, eta=LOW["eta"]))
    x = np.linspace(80, -40, 1200)
    ms = [_meas(x, _mrsim(site, "11B", sf, x, 1e9, True, 0.3), sf, "11B", None, seed + i)
          for i, sf in enumerate(B_FIELDS)]
    peaks = [{"name": "Q", "center": LOW["iso"] - 3, "shape": "quadrupolar", "cq_mhz": 2.2, "eta": 0.5}]
    fit = fit_fields(ms, peaks)
    q = fit.quantities
    assert abs(q["Q.center_ppm"].value - LOW["iso"]) < 0.05
    assert abs(q["Q.cq_mhz"].value / LOW["cq"] - 1) < 0.01
    assert abs(q["Q.eta"].value - LOW["eta"]) < 0.02
    assert not fit.warnings, fit.warnings
    # without the grid search (the given start only) the same data end in a local minimum, which is warned about
    given = {k: v for k, v in (("center", LOW["iso"] - 3), ("cq_mhz", 2.2), ("eta", 0.5))}
    monkeypatch.setattr(mf, "_ct_search", lambda *a, **k: dict(given))
    local = fit_fields(ms, peaks)
    assert local.stats["chisqr"] > 5 * fit.stats["chisqr"]
    assert any("reduced chi-square" in w for w in local.warnings)


def test_static_csa_two_fields():
    """Static powder patterns (the toolkit's csa, validated against mrsimulator in the CSA tests): the tensor in
    ppm is the same at both fields; a different broadening per field."""
    from specproc.fitting.nmr_models import csa

    x = np.linspace(200, -100, 900)
    ms = [_meas(x, csa(x, 1.0, 40.0, 90.0, 0.3, sg, 0.0, 0.0), sf, "13C", None, 50 + i)
          for i, (sf, sg) in enumerate(zip(CSA_FIELDS, (1.5, 2.5)))]
    fit = fit_fields(ms, [{"name": "C", "center": 45.0, "shape": "csa"}], static=True)
    q = fit.quantities
    _covered(q, {"C.center_ppm": 40.0, "C.delta_aniso_ppm": 90.0, "C.eta": 0.3})
    assert abs(q["C.delta_aniso_ppm"].value / 90.0 - 1) < 0.02 and abs(q["C.eta"].value - 0.3) < 0.03
    b = fit.table
    assert np.all(np.abs(b["broadening_ppm"] - 2.3548 * np.array([1.5, 2.5])) < 3 * b["broadening_ppm_stderr"])


def test_csa_from_the_wrong_sign_crosses_the_eta_1_seam():
    """Started on the wrong sign of δaniso, a bounded fit stops at η = 1 (the seam of Haeberlen's convention:
    (δ, 1) and (−δ, 1) are one tensor); the refit from the other branch reaches the truth."""
    from specproc.fitting.nmr_models import csa

    x = np.linspace(200, -80, 1400)
    ms = [_meas(x, csa(x, 1.0, 60.0, -60.0, 0.86, 0.6, 0.0, 5000.0 / sf), sf, "13C", 5000.0, 60 + i)
          for i, sf in enumerate(CSA_FIELDS)]
    fit = fit_fields(ms, [{"name": "C", "center": 60.3, "shape": "csa", "delta_aniso_ppm": 60.0}])
    q = fit.quantities
    _covered(q, {"C.delta_aniso_ppm": -60.0, "C.eta": 0.86})
    assert abs(q["C.delta_aniso_ppm"].value / -60.0 - 1) < 0.02 and abs(q["C.eta"].value - 0.86) < 0.06
    assert not fit.warnings, fit.warnings
