"""Whole-pattern (Pawley/Le Bail-type) refinement and whole-pattern phase confirmation (issue #24), and the
XRD command-line options of issue #25, on generated patterns with a known truth: cells strained by a few %,
intensities that differ from the reference (×0.2–×5 per reflection), Kα2, Poisson noise, a background."""
from __future__ import annotations

import numpy as np
import pytest

from specproc.techniques.xrd.references import builtin
from specproc.techniques.xrd.wholepattern import confirm_phases, d_from_cell, pawley_fit
from specproc.testing.xrd_synth import CU_KA1_NM, CU_KA2_NM, phase_sticks, synth_pattern

GRID = np.arange(10.0, 60.0, 0.02)
KA2 = (CU_KA2_NM, 0.5)


def _truth(phase, seed, strain=(0.01, 0.03), counts=4000.0, **kw):
    """A random truth: each free axis strained by ±1–3 %, each reflection's intensity ×0.2–×5 (log-uniform)."""
    rng = np.random.default_rng(seed)
    ref = builtin(phase)
    cell = {k: v * (1 + rng.choice([-1, 1]) * rng.uniform(*strain)) for k, v in ref.cell.items()}
    _, st = phase_sticks(phase, CU_KA1_NM, (5, 75), cell)
    tex = {lab: float(np.exp(rng.uniform(np.log(0.2), np.log(5)))) for lab in st["label"]}
    return ref, cell, {"phase": phase, "cell": cell, "texture": tex, **kw}


def _start(cell, rel=0.001):
    """A screened cell: off by ``rel`` (what the position screen's 0.25 % grid and peak refinement leave)."""
    return {k: v * (1 + rel) for k, v in cell.items()}


@pytest.mark.parametrize("phase,seed", [("LiCoO2", 8102)])  # orthorhombic LiBH4: the analyse test below
def test_cell_recovered_with_meaningful_esd(phase, seed):
    ref, cell, spec = _truth(phase, seed)
    # 10⁴ counts: the zero error is refined with the cell (their correlation widens the cell's esd)
    x, y, _ = synth_pattern([spec], GRID, seed=seed, counts=10000, size_nm=150, zero_shift_deg=0.03)
    fit = pawley_fit(x, y, [(ref, _start(cell))], CU_KA1_NM, kalpha2=KA2, fwhm_start=[0.08])
    ph = fit.phases[0]
    assert fit.converged and fit.gof2 < 1.3  # the model describes the data to its counting noise
    for k, v in cell.items():
        got, err = ph["cell"][k], ph["cell_nm_stderr"][k] * 10
        assert abs(got / v - 1) < 1e-4, k            # issue #24: cells within 1e-4 relative
        assert 0 < err < 1e-4 * v and abs(got - v) < 4 * err, k  # esd's that mean something
    assert fit.params["zero_deg"] == pytest.approx(0.03, abs=4 * fit.params["zero_deg_stderr"] + 1e-3)
    # d of a named reflection from the refined cell, with its esd from the cell covariance
    hkl = tuple(ph["hkl"][np.nanargmax(np.where(ph["inside"], ph["intensity"], -np.inf))])
    full = ref.full_cell(cell)
    from specproc.techniques.xrd.references import d_spacing

    d_true = float(d_spacing(np.array([hkl]), ref.system, full["a"], full["b"], full["c"])[0]) / 10
    d, de = d_from_cell(ph, hkl)
    assert de is not None and abs(d - d_true) < 4 * de + 1e-7


def test_pure_phase_present_absent_phases_absent():
    ref, cell, spec = _truth("LiBH4", 8110)
    x, y, _ = synth_pattern([spec], GRID, seed=8110, counts=3000, size_nm=200)
    # absent candidates started where a position screen could put them (strained reference cells)
    lih, li3n = builtin("LiH"), builtin("Li3N")
    cands = [(ref, _start(cell)), (lih, _start(lih.cell, 0.01)), (li3n, _start(li3n.cell, -0.012))]
    full, dec = confirm_phases(x, y, cands, CU_KA1_NM, kalpha2=KA2, fwhm_start=[0.08])
    by = {d["name"]: d for d in dec}
    assert by["LiBH4"]["status"] == "present" and by["LiBH4"]["p_value"] < 1e-6
    assert by["LiBH4"]["texture"]  # intensities ×0.2–×5 from the reference: flagged, still present
    assert by["LiH"]["status"] == "absent" and by["Li3N"]["status"] == "absent"
    assert by["LiH"]["p_value"] > 1e-3 and by["Li3N"]["p_value"] > 1e-3


def test_two_phases_both_found_minor_cell_refined():
    ref, cell, spec = _truth("LiBH4", 8120)
    ref2, cell2, spec2 = _truth("Li2O", 8121, scale=0.3)
    x, y, _ = synth_pattern([spec, spec2], GRID, seed=8120, counts=3000, size_nm=150)
    cands = [(ref, _start(cell)), (ref2, _start(cell2, -0.001)), (builtin("LiH"), builtin("LiH").cell)]
    full, dec = confirm_phases(x, y, cands, CU_KA1_NM, kalpha2=KA2, fwhm_start=[0.08])
    by = {d["name"]: d for d in dec}
    assert by["LiBH4"]["status"] == "present" and by["Li2O"]["status"] == "present"
    assert by["LiH"]["status"] == "absent"
    a = full.phase("Li2O")
    assert abs(a["cell"]["a"] / cell2["a"] - 1) < 2e-4
    assert abs(a["cell"]["a"] - cell2["a"]) < 4 * a["cell_nm_stderr"]["a"] * 10


def test_analyse_whole_pattern_quantities_and_plot():
    """Through ``xrd.analyse``: cells and d from the whole-pattern fit (with esd's), the presence call's
    numbers as quantities (#25), and the observed / calculated / difference plot with ticks per phase."""
    import specproc as sp
    from specproc.core.plotting import make_figure
    from specproc.testing.xrd_synth import measurement

    ref, cell, spec = _truth("LiBH4", 8130)
    x, y, _ = synth_pattern([spec], GRID, seed=8130, counts=3000, size_nm=150)
    r = sp.xrd.analyse(measurement(x, y), phases=["LiBH4", "LiH", "Li3N"],
                       caglioti=(0.004, -0.002, 0.003))
    q = r.quantities
    assert r.meta["phases_present"] == ["LiBH4"]
    for k, v in cell.items():
        got = q[f"phase(LiBH4).lattice.{k}_nm"]
        assert abs(got.value * 10 / v - 1) < 1e-4 and abs(got.value * 10 - v) < 4 * got.stderr * 10
    assert q["phase(LiBH4).wholepattern_p"].value < 1e-6 and q["phase(LiBH4).n_own_reflections"].value >= 10
    for name in ("LiBH4", "LiH", "Li3N"):  # the screen's numbers for every candidate, as quantities
        assert 0 <= q[f"phase({name}).coverage"].value <= 1 and 0 <= q[f"phase({name}).p_chance"].value <= 1
    d101 = q["phase(LiBH4).hkl(101).d_nm"]
    a, b, c = (q[f"phase(LiBH4).lattice.{k}_nm"].value for k in "abc")
    assert d101.value == pytest.approx(1 / np.sqrt(1 / a ** 2 + 1 / c ** 2), rel=1e-9) and d101.stderr > 0
    # instrument profile given: the Lorentzian width is the sample's (size 150 nm in the truth: same order)
    assert 50 < q["phase(LiBH4).size_nm"].value < 600
    assert 0.8 < q["wholepattern.chi2_red"].value < 1.5
    # the presence call reads its numbers (report's explain, CLI JSON): structured, not only text
    from specproc.techniques.xrd.cli import entry
    from specproc.techniques.xrd.report import explain

    assert "F-test p" in explain(r, "phase(LiBH4).present")
    ev = entry(r, "f.xrdml")["phases"][0]["evidence"]
    assert ev["wholepattern_p"] < 1e-6 and ev["n_own_reflections"] >= 10 and 0 < ev["coverage"] <= 1
    plot = r.plots[0]
    names = [s["name"] for s in plot["series"]]
    assert {"observed", "calculated", "observed − calculated"} <= set(names)
    assert [t["name"].split()[0] for t in plot["ticks"]] == ["LiBH4"]
    fig = make_figure(plot)
    assert any(tr.name.startswith("LiBH4") for tr in fig.data)


def test_phase_hidden_from_the_screen_is_confirmed():
    """The reported failure: a pure, strongly textured LiBH4 pattern at low counts, where few peaks pass the
    peak search and the position screen calls it probable or absent; the whole pattern confirms it."""
    import specproc as sp
    from specproc.testing.xrd_synth import measurement

    ref, cell, spec = _truth("LiBH4", 8140)
    x, y, _ = synth_pattern([spec], GRID, seed=8140, counts=120, size_nm=150, background=(150.0, -1.0))
    m = measurement(x, y)
    screen = sp.xrd.analyse(m, phases=["LiBH4", "LiH"], whole_pattern=False)
    assert screen.tables["phases"].set_index("name").loc["LiBH4", "status"] != "present"  # 5 peaks found
    r = sp.xrd.analyse(m, phases=["LiBH4", "LiH"])
    ph = r.tables["phases"].set_index("name")
    assert ph.loc["LiBH4", "status"] == "present", ph.loc["LiBH4", "reasons"]
    assert ph.loc["LiH", "status"] == "absent"
    for k, v in cell.items():  # weak pattern: esd's ~1e-4, and the truth within them
        got = r.quantities[f"phase(LiBH4).lattice.{k}_nm"]
        assert abs(got.value * 10 - v) < 4 * got.stderr * 10 and got.stderr * 10 / v < 5e-4, k


def test_cli_instrument_options():
    import argparse

    from specproc.techniques.xrd.cli import add_cli

    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers())
    a = parser.parse_args(["xrd", "f.xrdml", "--caglioti", "0.004,-0.002,0.003", "--instrument-fwhm", "0.05"])
    assert a.caglioti == (0.004, -0.002, 0.003) and a.instrument_fwhm == 0.05 and a.whole_pattern is None
    assert parser.parse_args(["xrd", "f", "--no-whole-pattern"]).whole_pattern is False
    for bad in ("0.1,0.2", "a,b,c", "0.1,0.2,-1", "nan,0,1"):
        with pytest.raises(SystemExit):
            parser.parse_args(["xrd", "f", "--caglioti", bad])
    with pytest.raises(SystemExit):
        parser.parse_args(["xrd", "f", "--instrument-fwhm", "-0.1"])


@pytest.mark.slow  # 17,000 points: 4 s on an idle core
def test_real_lab6_standard(realdata):
    """NIST SRM 660-series LaB6 on a laboratory PSD (real file): the whole-pattern cell against the certified
    a = 0.4156826 nm (SRM 660c; the file's standard). Issue #24 asks for 20 ppm; asymmetry (axial divergence)
    is not modelled, so the tolerance here is what the fit achieves, stated in docs/xrd.md."""
    import specproc as sp

    p = realdata / "xrd" / "LaB6_d500_si_psd.xye"
    if not p.exists():
        pytest.skip("LaB6 file not available")
    r = sp.xrd.analyse(sp.read(p), phases=["LaB6", "Si"])
    a = r.quantities["phase(LaB6).lattice.a_nm"]
    assert abs(a.value / 0.4156826 - 1) < 20e-6  # measured: +16 ppm (peak positions alone: −39 ppm)
    assert r.tables["phases"].set_index("name").loc["Si", "status"] == "absent"


def test_user_function_on_a_measurement():
    import specproc as sp
    from specproc.testing.xrd_synth import measurement

    a = 5.431179 * 1.01
    x, y, _ = synth_pattern([{"phase": "Si", "cell": {"a": a}}], np.arange(20.0, 90.0, 0.02), seed=8150)
    f = sp.xrd.fit_whole_pattern(measurement(x, y), ["Si"], cells={"Si": {"a": a * 0.9995}})
    ph = f.phase("Si")
    assert abs(ph["cell"]["a"] - a) < 4 * ph["cell_nm_stderr"]["a"] * 10 and ph["cell_nm_stderr"]["a"] * 10 / a < 2e-5
    assert 0.8 < f.gof2 < 1.3 and f.rexp < f.rwp < 1.2 * f.rexp
