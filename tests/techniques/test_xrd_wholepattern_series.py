"""Whole-pattern refinement of a temperature series through the batch engine (issue #24): every pattern's cells
against a generated truth (cells expanding linearly with T, two phases, Poisson noise), and the compiled
evaluator against the numpy one."""
from __future__ import annotations

import numpy as np
import pytest

from specproc.techniques.xrd.references import builtin
from specproc.techniques.xrd.wholepattern import pawley_series
from specproc.testing.xrd_synth import CU_KA1_NM, CU_KA2_NM, synth_pattern

KA2 = (CU_KA2_NM, 0.5)
ALPHA = {"a": 2.2e-5, "b": 1.6e-5, "c": 1.9e-5}  # 1/K: anisotropic expansion of the generated LiBH4


def _series(n, grid, t_hi=800.0):
    r1, r2 = builtin("LiBH4"), builtin("Li2O")
    Y, truth = [], []
    for j, t in enumerate(np.linspace(300.0, t_hi, n)):
        c1 = {k: v * (1 + ALPHA[k] * (t - 300)) for k, v in r1.cell.items()}
        c2 = {"a": r2.cell["a"] * (1 + 1.4e-5 * (t - 300))}
        _, y, _ = synth_pattern([{"phase": "LiBH4", "cell": c1}, {"phase": "Li2O", "cell": c2, "scale": 0.3}], grid,
                                seed=900 + j, counts=4000, size_nm=150)
        Y.append(y)
        truth.append({"LiBH4": c1, "Li2O": c2})
    starts = [(r1, {k: v * 1.001 for k, v in truth[0]["LiBH4"].items()}), (r2, {"a": truth[0]["Li2O"]["a"] * 0.999})]
    return np.array(Y), truth, starts


@pytest.fixture(scope="module")
def series():
    grid = np.arange(10.0, 70.0, 0.02)
    Y, truth, starts = _series(16, grid)
    return grid, Y, truth, pawley_series(grid, Y, starts, CU_KA1_NM, kalpha2=KA2, fwhm_start=[0.08])


def test_series_cells_follow_the_expansion(series):
    """1 % expansion over the series (a line moves by ~7 FWHM at 70°): every pattern's cells within 1e-4 of the
    truth, and within 4 esd's (the esd's mean something)."""
    grid, Y, truth, sf = series
    assert sf.success.all() and not sf.warnings
    for ph in sf.phases:
        for k in ph["free"]:
            true = np.array([t[ph["name"]][k] for t in truth])
            got, err = ph["cell"][k], ph["cell_stderr"][k]
            assert np.all(np.abs(got / true - 1) < 1e-4), (ph["name"], k)
            assert np.all((err > 0) & (err < 1e-4 * true)), (ph["name"], k)
            assert np.all(np.abs(got - true) < 4.5 * err), (ph["name"], k, np.max(np.abs(got - true) / err))
    assert np.all((sf.chi2_red > 0.8) & (sf.chi2_red < 1.3))
    # the expansion itself is recovered: slope of a(T) within 3 % of the truth's
    T = np.linspace(300.0, 800.0, len(truth))
    slope = np.polyfit(T, sf.phases[0]["cell"]["a"], 1)[0] / builtin("LiBH4").cell["a"]
    assert slope == pytest.approx(ALPHA["a"], rel=0.03)


def test_compiled_evaluator_equals_numpy(series):
    """The compiled kernel and the numpy evaluation of the same model: same χ², JᵀJ and Jᵀr."""
    grid, Y, truth, sf = series
    m = sf.model
    rows = np.array([0, 7, 15])
    P = sf.theta[rows] * (1 + 2e-4 * np.random.default_rng(3).normal(size=(3, sf.theta.shape[1])))
    from specproc.techniques.xrd.wholepattern import _series_kernel

    if _series_kernel() is None:  # pragma: no cover
        pytest.skip("no numba")
    a = m.evaluate(rows, P)
    b = m.evaluate_compiled(rows, P)
    np.testing.assert_allclose(b[0], a[0], rtol=1e-9)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-6, atol=1e-9 * np.abs(a[1]).max())
    np.testing.assert_allclose(b[2], a[2], rtol=1e-6, atol=1e-8 * np.abs(a[2]).max())


def test_first_pattern_matches_single_fit(series):
    """The series' first pattern is the single-pattern refinement itself (instrument refined there)."""
    grid, Y, truth, sf = series
    for ph, q in zip(sf.phases, sf.first.phases):
        for k in ph["free"]:
            assert ph["cell"][k][0] == q["cell"][k]


def test_measurement_level_series_result():
    """``series.fit_whole_pattern_series`` on measurements: a Result with per-pattern cells (nm) and esd's in
    ``data``, the series mean as a quantity, the held instrument in meta; an unknown phase is a ParameterError."""
    from specproc.core.errors import ParameterError
    from specproc.techniques.xrd.series import fit_whole_pattern_series
    from specproc.testing.xrd_synth import measurement

    grid = np.arange(15.0, 60.0, 0.02)
    Y, truth, starts = _series(6, grid, t_hi=500.0)
    pats = [measurement(grid, y, sample=f"T{j}") for j, y in enumerate(Y)]
    r = fit_whole_pattern_series(pats, ["LiBH4", "Li2O"], cells={"LiBH4": starts[0][1], "Li2O": starts[1][1]})
    a = r.data["phase(LiBH4).lattice.a_nm"].values
    true = np.array([t["LiBH4"]["a"] for t in truth]) / 10
    assert list(r.data["pattern"].values) == [f"T{j}" for j in range(6)]
    assert np.all(np.abs(a / true - 1) < 1e-4)
    assert np.all(r.data["phase(LiBH4).lattice.a_nm_stderr"].values > 0)
    assert r.quantities["phase(Li2O).lattice.a_nm.mean"].unit == "nm" and "zero_deg" in r.meta["instrument"]
    with pytest.raises(ParameterError):
        fit_whole_pattern_series(pats, ["LiBH4", "NoSuchPhase"])
