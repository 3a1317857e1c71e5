"""XPS automatic mode on the toolkit's model selection (issue #23): regions without a template.

Known truths generated with Poisson counts on a Shirley step (``specproc.testing.xps_synth``); the
seeded sweep is a subset of ``benchmarks/bench_xps_auto.py`` (its definitions of resolvable, split
and confident wrong count).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.io.vamas import VamasReader
from specproc.techniques.xps.auto import fit_automatic, select_region
from specproc.techniques.xps.rsf import rsf_for
from specproc.testing.xps_synth import region_spectra, write_vamas

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_xps_auto.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_xps_auto", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _region(line, lines, areas, lo, hi, seed=0, base=400.0, step=0.15):
    """(x descending, Y (levels, n)) of one region: ``lines`` = [(centre, fwhm, [(offset, ratio)])]."""
    x = np.round(np.arange(hi, lo - 1e-9, -0.05), 3)
    spec = [{"center": c, "fwhm": f, "mixing": 0.3, "satellites": s} for c, f, s in lines]
    Y, _, _ = region_spectra(x, spec, areas, base=base, step=step, seed=seed)
    return x, Y


def _auto(line, x, Y):
    sel = select_region(line, x, Y, line=line, elements={line.split()[0]})
    sf, comps, warns = fit_automatic(line, x, Y, sel, line=line, elements={line.split()[0]},
                                     weights=1.0 / np.sqrt(np.maximum(Y, 1.0)))
    return sf, comps, warns


def test_seeded_sweep_counts_centres_and_doubts():
    """20 generated regions (1-6 components, doublets, overlaps to 0.5 FWHM, S/N 20-1000): resolvable
    ones get the right count with centres within 0.2 FWHM, no line is split, and a wrong count where the
    components are not resolvable is always said to be uncertain (the benchmark's numbers in
    docs/toolkit.md and docs/xps.md)."""
    b = _bench()
    rows = []
    for seed in range(20):
        t = b.truth(seed)
        found, warns, _ = b.run_case(t)
        rows.append(b.score(t, found, warns))
    res = [r for r in rows if r["resolvable"]]
    assert len(res) >= 7
    assert sum(r["right"] for r in res) >= len(res) - 1
    assert all(r["centres_ok"] for r in res if r["right"])
    assert sum(r["split"] for r in rows) == 0
    unres = [r for r in rows if not r["resolvable"]]
    wrong = [r for r in unres if not r["right"] and not r["uncertain_warning"]]
    # no confident wrong count (the resolution check, specproc.fitting.resolution: 0 of 180 in the
    # benchmark's 500 regions; 10.6 % before it)
    assert not wrong, wrong


def test_doublet_is_one_component_and_two_states_are_two():
    """S 2p of one state is one doublet component (not 2p3/2 + 2p1/2 as two states); Mo 3d of MoS2 plus
    MoO3 (the Mo6+ 3d5/2 0.4 eV from the Mo4+ 3d3/2) is two doublets at the true positions."""
    x, Y = _region("S 2p", [(162.0, 0.9, [(1.18, 0.5)])], [[40000.0]], 155.0, 170.0)
    sf, comps, warns = _auto("S 2p", x, Y)
    assert len(comps) == 1 and comps[0].doublet
    assert float(sf.comps[comps[0].name]["center"][0]) == pytest.approx(162.0, abs=0.05)
    x, Y = _region("Mo 3d", [(229.0, 1.0, [(3.13, 2 / 3)]), (232.5, 1.2, [(3.13, 2 / 3)])], [[60000.0, 25000.0]],
                   222.0, 240.0, seed=3)
    sf, comps, warns = _auto("Mo 3d", x, Y)
    got = sorted(float(sf.comps[c.name]["center"][0]) for c in comps)
    assert len(got) == 2 and all(c.doublet for c in comps)
    assert got == pytest.approx([229.0, 232.5], abs=0.1)


def test_unresolvable_pair_is_one_line_at_their_centroid_or_an_uncertain_count():
    """Two C 1s lines 0.4 FWHM apart (S/N ~100, not resolvable): never a split, never more than two; one
    component sits at their area-weighted centre (within 0.1 FWHM), two come with a count-uncertain warning.
    (Which of the two happens is the toolkit's decision: docs/xps.md counts the confident single lines.)"""
    for seed in (5, 8):
        x, Y = _region("C 1s", [(285.0, 1.4, []), (285.55, 1.4, [])], [[8000.0, 6000.0]], 278.0, 294.0, seed=seed)
        sf, comps, warns = _auto("C 1s", x, Y)
        assert len(comps) in (1, 2)
        if len(comps) == 1:
            assert float(sf.comps[comps[0].name]["center"][0]) == pytest.approx((8 * 285.0 + 6 * 285.55) / 14,
                                                                                abs=0.14)
        else:
            assert any("uncertain" in w for w in warns), warns


def test_selection_on_summed_levels_then_every_level_judged(tmp_path):
    """A depth profile without a template: the components are selected on the level-summed region, then
    fitted at every level; one that has gone at the last level is not detected there (NaN, out of the at %)."""
    be = np.round(np.arange(405.0, 392.0 - 1e-9, -0.05), 3)
    Y, _, _ = region_spectra(be, [{"center": 398.6, "fwhm": 1.3, "mixing": 0.3},
                                  {"center": 401.5, "fwhm": 1.4, "mixing": 0.3}],
                             np.array([[30.0, 20.0], [30.0, 10.0], [30.0, 0.0]]) * rsf_for("N 1s") * 3000,
                             base=300, seed=11)
    bc = np.round(np.arange(291.0, 279.0 - 1e-9, -0.05), 3)
    Yc, _, _ = region_spectra(bc, [{"center": 284.8, "fwhm": 1.3, "mixing": 0.3}],
                              np.full((3, 1), 30.0 * rsf_for("C 1s") * 3000), base=300, seed=12)
    path = tmp_path / "auto.vms"
    write_vamas(path, [{"species": "N", "transition": "1s", "be": be, "Y": Y},
                       {"species": "C", "transition": "1s", "be": bc, "Y": Yc}], [0.0, 60.0, 120.0])
    r = sp.xps.fit_profile(VamasReader().read(path))
    c = r.tables["components"]
    n = c[c.region == "N 1s"]
    assert n.name.nunique() == 2
    hi = n[n.be_eV > 400].sort_values("level")
    assert hi.be_eV.iloc[0] == pytest.approx(401.5, abs=0.1)
    assert hi.detected.tolist()[:2] == [True, True] and not hi.detected.iloc[2]
    assert np.isnan(hi.atomic_percent.iloc[2])
    assert any("model selection" in w and w.startswith("N 1s") for w in r.warnings)


def test_fit_region_without_components_uses_the_selection(tmp_path):
    """``fit_region`` without components: the same selection (a doublet is one component)."""
    x, Y = _region("S 2p", [(162.0, 0.9, [(1.18, 0.5)]), (168.5, 1.3, [(1.18, 0.5)])], [[40000.0, 15000.0]],
                   155.0, 175.0, seed=2)
    path = tmp_path / "s.vms"
    write_vamas(path, [{"species": "S", "transition": "2p", "be": x, "Y": Y}], [0.0])
    fr = sp.xps.fit_region(VamasReader().read(path), "S 2p")
    assert sorted(fr.table.be_eV) == pytest.approx([162.0, 168.5], abs=0.1)


def test_noise_only_region_gets_no_component():
    """Poisson counts on a flat background (3 seeds): nothing selected, said so, no invented line."""
    x = np.round(np.arange(295.0, 278.0 - 1e-9, -0.05), 3)
    for seed in range(3):
        Y = np.random.default_rng(seed).poisson(500.0, (2, x.size)).astype(float)
        sel = select_region("C 1s", x, Y, line="C 1s", elements={"C"})
        sf, comps, warns = fit_automatic("C 1s", x, Y, sel, line="C 1s")
        assert sf is None and comps == []
        assert any("no component found" in w for w in warns)


def test_two_doublets_closer_than_their_width_are_two_or_an_uncertain_count():
    """Two S 2p states 0.5 FWHM apart (areas 1500 : 1100 counts on a background of 400: S/N ~20, not
    resolvable): never a confident single doublet — two components, or one with the resolution
    check's count-uncertain warning (a pair of doublets tried in its place, specproc.fitting.resolution;
    measured: one component, warned, in seeds 2, 6, 7)."""
    for seed in (2, 6):
        x, Y = _region("S 2p", [(163.7, 1.2, [(1.18, 0.5)]), (164.3, 1.2, [(1.18, 0.5)])], [[1500.0, 1100.0]],
                       156.0, 172.0, seed=seed)
        sf, comps, warns = _auto("S 2p", x, Y)
        assert len(comps) in (1, 2)
        if len(comps) == 1:
            assert any("uncertain" in w for w in warns), warns
