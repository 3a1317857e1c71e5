"""NMR automatic mode on the toolkit's model selection (issue #23): generated truths with noise.

The issue's 7Li case (a narrow line on a broad one at the same centre must be two components, not
one and not a split), spinning sidebands that are never species, n_peaks / max_peaks as the
selection's n_components / max_components, the selection record in the result, and a small seeded
subset of the benchmark's random-truth sweep (``benchmarks/bench_nmr_auto.py``, >= 500 spectra
there) with its scores: right count where resolvable, no split line, centres within 0.2 FWHM,
no sideband reported as a species, no confident wrong count where the lines are not resolvable.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

import specproc as sp

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "benchmarks"))
from _nmr_synth import spectrum  # noqa: E402
from bench_nmr_auto import score, summarise, truth  # noqa: E402

X7 = np.linspace(30, -30, 4096)


@pytest.mark.parametrize("seed", [3, 9])
def test_7li_narrow_on_broad_is_two_components_not_a_split(seed):
    """0.32 ppm FWHM on a 3.6 ppm line at one centre, areas 0.77 / 0.23 (seeds 3 and 9 once gave
    one component: the broad line's wings are too flat for a second-derivative candidate)."""
    m = spectrum([(0.0, 0.77, 0.32), (0.05, 0.23, 3.6)], noise=0.004, seed=seed, x=X7, nucleus="7Li", sf=155.5)
    r = sp.nmr.deconvolve(m)
    t = r.table.sort_values("fwhm_ppm").reset_index(drop=True)
    assert len(t) == 2, (t, r.meta["selection"]["steps"])
    assert abs(t.loc[0, "area_fraction"] - 0.77) < 0.02, t
    assert abs(t.loc[0, "fwhm_ppm"] - 0.32) < 0.03 and abs(t.loc[1, "fwhm_ppm"] - 3.6) < 0.4, t
    assert abs(t.loc[0, "center_ppm"]) < 0.02
    # the record of the selection is in the result
    sel = r.meta["selection"]
    assert sel["n_components"] == 2 and sel["stopped"] and any(st.get("accepted") for st in sel["steps"])
    assert "BIC" in r.meta["model_selection"] and "specproc.fitting.select" in r.meta["model_selection"]


def test_sidebands_of_several_orders_are_satellites_never_species():
    sf, rate = 128.38, 4000.0
    k = rate / sf                                   # 31.2 ppm
    lines = [(-20.0, 1.0, 1.2), (-26.0, 0.5, 1.5)]
    sb = [(c + o * k, a * f, w) for c, a, w in lines for o, f in ((1, 0.2), (-1, 0.25), (2, 0.06), (-2, 0.08))]
    m = spectrum(lines + sb, noise=0.002, x=np.linspace(60, -110, 4096), mas=rate, sf=sf, seed=4)
    r = sp.nmr.deconvolve(m)
    t = r.table.sort_values("center_ppm")
    assert len(t) == 2, t
    assert np.allclose(t["center_ppm"], [-26.0, -20.0], atol=0.05)
    # the areas of the sidebands are credited to their centre bands
    assert abs(t["area_fraction"].iloc[1] - 1.59 / (1.59 + 0.795)) < 0.02, t
    assert r.meta["recognised_sidebands"]
    assert (t["n_sidebands"] >= 2).all()


def test_n_peaks_and_max_peaks_map_onto_the_selection():
    m = spectrum([(-40.0, 1.0, 1.5), (-30.0, 0.6, 1.5), (-20.0, 0.4, 1.5)], noise=0.003, seed=2)
    capped = sp.nmr.deconvolve(m, max_peaks=2)
    assert len(capped.table) == 2
    assert any("max_peaks = 2" in w for w in capped.warnings), capped.warnings
    assert capped.meta["selection"]["stopped"] == "max_peaks = 2 reached"
    forced = sp.nmr.deconvolve(m, n_peaks=3)
    assert len(forced.table) == 3 and forced.meta["model_selection"].startswith("n_peaks = 3")


def test_random_truth_subset_of_the_sweep():
    """8 seeded spectra of the benchmark's sweep (1-8 lines, 0.5-3 FWHM apart, S/N 20-1000, half with
    sidebands; seeds 1000-1007, not the benchmark's 0-499; ~8 s of CPU). The issue's targets with one
    case of slack for the resolvable count; where the lines are not resolvable (2 of the 8 here) no
    confident wrong count: the right count or the "count uncertain" warning (the resolution check,
    specproc.fitting.resolution)."""
    rows = []
    for seed in range(8):
        m, t = truth(1000 + seed)
        r = sp.nmr.deconvolve(m, max_peaks=20)
        rows.append(score(r.table["center_ppm"].to_numpy(), r.warnings, t))
    s = summarise([dict(r, seconds=0.0, error=None) for r in rows])
    assert s["split_lines_per_true_line"] * sum(r["n_true"] for r in rows) <= 1, s
    assert s["sidebands_reported_as_species"] == 0, s
    assert s["n_resolvable"] >= 4
    assert s["resolvable_right_count"] >= (s["n_resolvable"] - 1) / s["n_resolvable"], s
    assert s["resolvable_centres_within_0.2_fwhm"] >= 0.9, s
    if s["n_unresolvable"]:
        assert s["unresolvable_confident_wrong"] == 0, s


@pytest.mark.parametrize("k", [1, 3, 5])
def test_selection_noise_between_far_reaching_wings(k):
    """Lorentzian lines at S/N 80-200 hold their wings above the noise over most of the window: the
    clipped estimate took them for noise (1.27x the true SD here, up to 2.6x on spinning clusters of
    the sweep, and white noise then read as correlated, L = 16). The automatic mode's estimate
    (segments each with their own quadratic, corrected for the noise correlation) recovers the SD of
    white and of moving-average-correlated noise (k points) within 12 %."""
    from specproc.fitting.noise import noise_sigma
    from specproc.fitting.select import noise_correlation
    from specproc.techniques.nmr.auto import _local_noise

    rng = np.random.default_rng(5)
    x = np.linspace(100, -100, 8192)
    e = np.convolve(rng.standard_normal(x.size + 64), np.ones(k) / np.sqrt(k), mode="same")[32:-32]
    y = 200 / (1 + ((x - 10) / 1.0) ** 2) + 80 / (1 + ((x + 30) / 2.0) ** 2) + e
    assert noise_sigma(y) > 1.2            # what is fixed
    s = _local_noise(y)
    assert 0.88 <= s <= 1.08, s
    if k == 1:                              # white noise is not read as correlated
        assert noise_correlation(y, s) < 1.3


def test_selection_noise_of_a_spinning_cluster():
    """Generated MAS spectra of the sweep's kind (seeds outside the benchmark's 0-499) where the
    prepared estimate is >= 1.5x the true noise SD: the automatic mode's is within 1.35x."""
    from specproc.fitting.noise import noise_sigma, noise_sigma_diff
    from specproc.techniques.nmr.auto import _local_noise

    for seed in (2015, 2033, 2085):
        m, t = truth(seed)
        y = np.asarray(m.values, float)
        old = noise_sigma(y) / t["noise"]
        new = min(noise_sigma(y), max(_local_noise(y), noise_sigma_diff(y))) / t["noise"]
        assert old >= 1.5 and 0.9 <= new <= 1.35, (seed, old, new)
