"""The quadrupolar CT site as a registry lineshape with a batch-engine kernel (issue #27).

* ``nmr_models.quadrupolar`` / ``d_quadrupolar`` evaluate the same numbers as the reference
  ``nmr_models.ct_mas`` (validated against mrsimulator in test_nmr_mas_ct.py and
  test_nmr_quadrupolar_validation.py), static, at infinite speed and at finite rates, row by row in a stack;
* the kernel's analytic Jacobian agrees with central differences of ``ct_mas``;
* a three-site 11B spectrum (quadrupolar site at 12.5 kHz with its sidebands from mrsimulator, two
  pseudo-Voigt lines with tied sidebands, noise) is recovered through ``sp.nmr.deconvolve``, whose
  fit now runs on the batch engine;
* a stack of quadrupolar spectra goes through ``fit_batch`` (batched LM, not the lmfit loop).
"""
import numpy as np
import pytest

from specproc.fitting import nmr_models as nm

from _nmr_synth import mrsim_ct  # noqa: E402

SF = 128.38
X = np.linspace(300, -250, 4400)      # descending ppm axis, as NMR spectra are stored
# (rate_ppm of the registry model, same rate for ct_mas)
RATES = [(12500 / SF, 12500 / SF), (5000 / SF, 5000 / SF), (0.0, 0.0), (nm.FAST_MAS, float("inf"))]


def _ref(x, p, rate):
    return nm.ct_mas(x, *p[:6], SF, 1.5, rate)


@pytest.mark.parametrize("rate,ref_rate", RATES)
def test_kernel_is_the_reference_evaluation(rate, ref_rate):
    p = [2.0, 29.5, 2.6, 0.33, 0.6, 0.0]
    ref = _ref(X, p, ref_rate)
    one = nm.quadrupolar(X, *p, SF, 1.5, rate)
    assert np.max(np.abs(one - ref)) < 1e-9 * ref.max()
    # a stack of different sites (the engine's (n, 1) parameters): each row is its own reference
    rows = [[2.0, 29.5, 2.6, 0.33, 0.6, 0.0], [1.0, 10.0, 2.5, 0.8, 0.4, 0.0], [0.5, -5.0, 2.7, 0.05, 1.0, 0.0]]
    cols = [np.array([[r[j]] for r in rows]) for j in range(6)]
    out = nm.d_quadrupolar(X[None, :], *cols, np.full((3, 1), SF), np.full((3, 1), 1.5), np.full((3, 1), rate))
    for k, r in enumerate(rows):
        ref_k = _ref(X, r, ref_rate)
        # rows share the transform length of the widest broadening: the same numbers to ~1e-8
        assert np.max(np.abs(out[0][k] - ref_k)) < 1e-7 * ref_k.max(), k


@pytest.mark.parametrize("rate,ref_rate", RATES)
def test_jacobian_matches_central_differences(rate, ref_rate):
    """Analytic derivatives against central differences of the reference: amplitude, η, σ, γ
    exactly (the model is linear or smooth in them: ~1e-9); the centre and CQ move the line across
    the piecewise-linear cumulative tables, whose slopes the kernel differentiates and the
    differences average: within 1e-3 of the largest derivative (a wrong derivative is O(1) off)."""
    p = [1.0, 29.5, 2.6, 0.33, 0.6, 0.2]
    cols = [np.array([[v]]) for v in p + [SF, 1.5, rate]]
    g = nm.d_quadrupolar(X[None, :], *cols)
    steps = {0: 1e-6, 1: 1e-4, 2: 1e-5, 3: 1e-5, 4: 1e-5, 5: 1e-5}
    tol = {0: 1e-6, 1: 1e-3, 2: 2e-3, 3: 1e-6, 4: 1e-6, 5: 1e-6}
    for j, h in steps.items():
        lo, hi = list(p), list(p)
        lo[j] -= h
        hi[j] += h
        fd = (_ref(X, hi, ref_rate) - _ref(X, lo, ref_rate)) / (2 * h)
        dev = np.max(np.abs(g[1 + j][0] - fd)) / np.max(np.abs(fd))
        assert dev < tol[j], (nm._QUAD_PARAMS[j], dev)
    for j in (6, 7, 8):   # the fixed context
        assert not np.any(g[1 + j][0])


def test_too_slow_spinning_is_an_error_or_a_rejected_row():
    x = np.linspace(200, -200, 2000)
    with pytest.raises(ValueError, match="too slow"):
        nm.quadrupolar(x, 1.0, 10.0, 8.0, 0.8, 0.2, 0.0, SF, 1.5, 500.0 / SF)
    out = nm.d_quadrupolar(x[None, :], *[np.array([[v]]) for v in (1.0, 10.0, 8.0, 0.8, 0.2, 0.0, SF, 1.5,
                                                                   500.0 / SF)])
    assert np.all(np.isnan(out[0]))     # the engine rejects such a trial point instead of failing


def _pv_with_sidebands(x, c, fwhm, area, rate, ratios):
    from specproc.fitting.lineshapes import pseudo_voigt

    y = pseudo_voigt(x, area, c, fwhm / 2, 0.4)
    for k, r in ratios.items():
        y = y + pseudo_voigt(x, r * area, c + k * rate, fwhm / 2, 0.4)
    return y


def test_three_site_fit_recovers_a_known_truth():
    """An 11B spectrum like the study's (quadrupolar site δiso 29.5 ppm, CQ 2.6 MHz, η 0.3 at 12.5 kHz,
    mrsimulator, its sidebands in the data; two pseudo-Voigt lines at -25 and -43 ppm with
    sidebands; SNR ~200) fitted by ``sp.nmr.deconvolve`` with the quadrupolar site given at its
    maximum's neighbourhood and no CQ: the start search and the batch engine find the truth."""
    pytest.importorskip("mrsimulator")
    import specproc as sp
    from specproc.core.measurement import new_measurement

    rate = 12500.0
    x = np.linspace(250, -250, 5000)
    rp = rate / SF
    q = mrsim_ct("11B", SF, 29.5, 2.6, 0.3, rate, x, 0.8, sidebands=64)
    q = 16.0 * q / (q.sum() * abs(x[1] - x[0]))
    y = q + _pv_with_sidebands(x, -25.0, 5.0, 7.0, rp, {1: 0.08, -1: 0.1}) \
        + _pv_with_sidebands(x, -43.5, 2.5, 2.0, rp, {1: 0.05, -1: 0.06})
    y = y + 0.004 * np.random.default_rng(27).standard_normal(x.size)
    m = new_measurement(y, {"shift": (x, "ppm")}, technique="nmr", sample="three-site",
                        metadata={"nucleus": "11B"}, acquisition=dict(sf_mhz=SF, mas_rate_hz=rate))
    r = sp.nmr.deconvolve(m, peaks=[{"name": "N2BH", "center": 25.0, "shape": "quadrupolar"},
                                    {"name": "NBH3", "center": -25.0}, {"name": "BH4", "center": -43.0}],
                          shape="pseudo-voigt")
    assert r.stats["optimizer"] in ("engine", "engine+lmfit")
    t = r.table.set_index("name")
    n2bh = t.loc["N2BH"]
    assert abs(n2bh["center_ppm"] - 29.5) < 0.05, n2bh["center_ppm"]
    assert abs(n2bh["cq_mhz"] / 2.6 - 1) < 0.005, n2bh["cq_mhz"]
    assert abs(n2bh["eta"] - 0.3) < 0.01, n2bh["eta"]
    assert abs(t.loc["NBH3", "center_ppm"] + 25.0) < 0.02 and abs(t.loc["BH4", "center_ppm"] + 43.5) < 0.02
    # the areas, sidebands included: 16 (in the window; the CT sidebands beyond it carry < 0.1 %) / 8.26 / 2.22
    assert abs(t.loc["N2BH", "area_fraction"] - 16 / (16 + 7 * 1.18 + 2 * 1.11)) < 0.005
    assert not any("bound" in w for w in r.warnings), r.warnings
    # the result keeps the quadrupolar site's own columns and quantities
    assert {"cq_mhz_stderr", "eta_stderr", "broadening_ppm", "unconstrained"} <= set(t.columns)
    assert "N2BH.cq_mhz" in r.quantities and "N2BH.eta" in r.quantities


def test_a_stack_of_quadrupolar_spectra_goes_through_the_batch_engine():
    """Four finite-MAS spectra (12.5 kHz) of different sites (kernel data with noise) fitted by one
    ``fit_batch`` call from per-spectrum starts: batched LM (no lmfit loop), every truth recovered."""
    from specproc.fitting.batch import fit_batch
    from specproc.fitting.models import ModelSpec, Peak

    x = np.linspace(150, -100, 1250)
    rate = 12500.0 / SF
    truths = [(29.5, 2.6, 0.3), (27.0, 2.5, 0.4), (31.0, 2.7, 0.25), (28.0, 2.55, 0.35)]
    rng = np.random.default_rng(3)
    Y = np.array([nm.quadrupolar(x, 10.0, c, q, e, 0.5, 0.0, SF, 1.5, rate) for c, q, e in truths])
    Y = Y + 0.005 * Y.max() * rng.standard_normal(Y.shape)
    spec = ModelSpec(peaks=[Peak(name="Q", shape="quadrupolar", center=25.0, amplitude=8.0,
                                 init={"cq_mhz": 2.5, "eta": 0.5, "sigma": 0.5, "larmor_mhz": SF, "spin": 1.5,
                                       "rate_ppm": rate},
                                 bounds={"center": (0.0, 50.0), "sigma": (0.05, 5.0)})])
    init = {"Q_center": [c - 0.5 for c, _q, _e in truths], "Q_cq_mhz": [q * 1.03 for _c, q, _e in truths],
            "Q_eta": [min(e + 0.05, 1.0) for _c, _q, e in truths]}
    ds = fit_batch(spec, x, Y, init=init)
    assert ds.attrs["method"] == "batched-lm"
    assert bool(ds["success"].all())
    for k, (c, q, e) in enumerate(truths):
        assert abs(float(ds["Q_center"][k]) - c) < 0.05
        assert abs(float(ds["Q_cq_mhz"][k]) / q - 1) < 0.005
        assert abs(float(ds["Q_eta"][k]) - e) < 0.02
