"""Peak asymmetry (axial divergence) in the whole-pattern fit (issue #24): generated lines whose low-angle tail
follows a Finger–Cox–Jephcoat-like kernel (density ∝ u^-1/2 e^-u from the Bragg angle, length ∝ cot 2θ: not the
fit's exponential tail) bias the cell of a symmetric-profile fit; with the tail refined the cell is recovered."""
from __future__ import annotations

import numpy as np
import pytest

from specproc.fitting.lineshapes import pseudo_voigt
from specproc.techniques.xrd.references import builtin
from specproc.techniques.xrd.wholepattern import _pv_tail_parts, pawley_fit
from specproc.testing.xrd_synth import CU_KA1_NM, CU_KA2_NM, kalpha2_position

KA2 = (CU_KA2_NM, 0.5)


def _asymmetric_pattern(phase, cell, x, length=0.04, frac=0.35, counts=20000, seed=0):
    """Lines = (1 − f) pV + f · pV ⊗ kernel, kernel density ∝ u^-1/2 e^-u over u = Δ / (length · cot 2θ), tailing to
    low angles below 90° (high angles above); Kα2 alike; Caglioti widths; Poisson noise."""
    ref = builtin(phase)
    st = ref.sticks(CU_KA1_NM, (x[0] - 2, x[-1] + 2), cell=cell)
    u = ((np.arange(80) + 0.5) / 80) ** 2 * 8
    wt = u ** -0.5 * np.exp(-u) * np.gradient(u)
    wt /= wt.sum()
    y = 60 - 0.3 * (x / 10)
    for t, inten in zip(st["two_theta"], st["intensity"]):
        th = np.radians(t / 2)
        fw = np.sqrt(0.004 * np.tan(th) ** 2 - 0.002 * np.tan(th) + 0.003)
        ell = length / np.tan(2 * th)
        a = counts * 0.1 * inten / 100
        for c, r in ((t, 1.0), (kalpha2_position(t, CU_KA1_NM, CU_KA2_NM), 0.5)):
            y = y + (1 - frac) * r * pseudo_voigt(x, a, c, fw / 2, 0.5)
            for uk, wk in zip(u, wt):
                y = y + frac * r * wk * pseudo_voigt(x, a, c - ell * uk, fw / 2, 0.5)
    return np.random.default_rng(seed).poisson(y).astype(float)


def test_asymmetric_low_angle_lines_no_longer_bias_the_cell():
    ref = builtin("LaB6")
    cell = {"a": ref.cell["a"] * 1.002}
    x = np.arange(15.0, 100.0, 0.02)
    y = _asymmetric_pattern("LaB6", cell, x)
    start = [(ref, {"a": cell["a"] * 1.0005})]
    sym = pawley_fit(x, y, start, CU_KA1_NM, kalpha2=KA2, fwhm_start=[0.08])
    asym = pawley_fit(x, y, start, CU_KA1_NM, kalpha2=KA2, fwhm_start=[0.08], asymmetry=True)
    err_sym = sym.phases[0]["cell"]["a"] / cell["a"] - 1
    err_asym = asym.phases[0]["cell"]["a"] / cell["a"] - 1
    esd_sym = sym.phases[0]["cell_nm_stderr"]["a"] * 10 / cell["a"]
    assert abs(err_asym) < 3e-5                                   # measured -8.7e-6 (esd 2e-6)
    assert abs(err_sym) > 3 * abs(err_asym) and abs(err_sym) > 10 * esd_sym  # measured -6.2e-5, 20 esd's
    assert asym.gof2 < 0.6 * sym.gof2 and asym.gof2 < 1.5           # the tail describes the lines (2.8 -> 1.2)
    assert 0.1 < asym.params["asym_frac"] < 0.6 and asym.params["asym_frac_stderr"] > 0
    assert "asym_frac" not in sym.params                           # off by default: the model is unchanged


def test_symmetric_lines_give_no_tail():
    """On symmetric lines the tail is not invented: its fraction × length stays near zero and the cell is as good."""
    from specproc.testing.xrd_synth import synth_pattern

    ref = builtin("LaB6")
    cell = {"a": ref.cell["a"] * 0.998}
    x = np.arange(15.0, 100.0, 0.02)
    _, y, _ = synth_pattern([{"phase": "LaB6", "cell": cell}], x, seed=4, counts=20000)
    f = pawley_fit(x, y, [(ref, {"a": cell["a"] * 1.0005})], CU_KA1_NM, kalpha2=KA2, fwhm_start=[0.08],
                   asymmetry=True)
    assert abs(f.phases[0]["cell"]["a"] / cell["a"] - 1) < 2e-5
    assert f.params["asym_frac"] * f.params["asym_len"] < 2e-3  # a tail's centroid shift < 0.002° cot 2θ


def test_tail_derivatives_match_differences():
    """The analytic derivatives of the tailed profile (used by the Jacobian) against central differences."""
    dx = np.linspace(-0.6, 0.4, 41)
    args = dict(gam=0.09, eta=0.4, ell=0.05, frac=0.3)
    v, dc, dg, de, df, dl = _pv_tail_parts(dx, **args)
    for name, ana, sign in (("gam", dg, 1), ("eta", de, 1), ("frac", df, 1), ("ell", dl, 1)):
        h = 1e-6
        up = dict(args, **{name: args[name] + h})
        dn = dict(args, **{name: args[name] - h})
        num = (_pv_tail_parts(dx, **up)[0] - _pv_tail_parts(dx, **dn)[0]) / (2 * h)
        np.testing.assert_allclose(ana, sign * num, rtol=1e-5, atol=1e-6 * np.abs(num).max())
    num_c = -(_pv_tail_parts(dx + 1e-6, **args)[0] - _pv_tail_parts(dx - 1e-6, **args)[0]) / 2e-6
    np.testing.assert_allclose(dc, num_c, rtol=1e-5, atol=1e-6 * np.abs(num_c).max())


@pytest.mark.slow  # 17,381 points, two fits: ~5 s on a loaded core
def test_real_lab6_psd_pattern_asymmetry(realdata):
    """The real LaB6 PSD pattern (its low-angle lines are visibly asymmetric): the axial-divergence tail is found
    (fraction many esd's from zero) and lowers χ²; the cell it gives is stated in docs/xrd.md (+70 ppm from SRM
    660c against +16 ppm with symmetric lines: zero, displacement and asymmetry are correlated on this pattern,
    so the default stays symmetric). The file holds no Si phase (MANIFEST: "Si PSD" is the detector)."""
    import specproc as sp
    from specproc.techniques.xrd.processing import background

    p = realdata / "xrd" / "LaB6_d500_si_psd.xye"
    if not p.exists():
        pytest.skip("LaB6 file not available")
    m = sp.read(p)
    x = m.coords["two_theta"].values
    y = m.values.astype(float)
    sig = m.coords["intensity_sigma"].values
    acq = m.attrs["acquisition"]
    kw = dict(kalpha2=(acq["kalpha2_nm"], acq["kalpha2_ratio"]), sigma=sig, background=background(x, y, 1.5),
              fwhm_start=[0.1])
    start = [(builtin("LaB6"), {"a": 4.1569})]
    sym = pawley_fit(x, y, start, acq["wavelength_nm"], **kw)
    asym = pawley_fit(x, y, start, acq["wavelength_nm"], asymmetry=True, **kw)
    assert asym.params["asym_frac"] > 5 * asym.params["asym_frac_stderr"]   # measured 0.41
    assert asym.gof2 < 0.95 * sym.gof2                                      # measured 1.36 -> 1.25
    a_sym, a_asym = sym.phases[0]["cell_nm"]["a"], asym.phases[0]["cell_nm"]["a"]
    assert abs(a_sym / 0.4156826 - 1) < 20e-6                               # measured +16 ppm
    assert abs(a_asym / 0.4156826 - 1) < 100e-6                             # measured +70 ppm (see docstring)
