"""XPS on unusual real files (issue #21) and the checks that keep numbers honest.

* real files of ``../shared/realdata/xps`` (MANIFEST.md facts; skipped when the folder is absent, never
  copied): the Omicron file with unlabelled blocks and all-zero blocks, the survey-only SPECS/CasaXPS
  file on a kinetic-energy axis, the MultiPak MoS2 file — every one gives positions, areas and at %;
* chemistry names need consistent evidence (O 1s at 531.5 eV is Li2CO3 only with carbonate in C 1s);
* template components get the toolkit's given-start checks (no signal -> not detected, NaN, left out
  of the at %), automatic components its significance test;
* unnamed VAMAS blocks are read, counts are compared as count rates.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import specproc as sp
from specproc.io.vamas import VamasReader
from specproc.techniques.xps.rsf import rsf_for
from specproc.testing.xps_synth import region_spectra, write_vamas

R = VamasReader()


def _raw(r, q):
    """File binding energy of a charge-corrected one."""
    return q - r.meta["charge_shift_eV"]


def _envelope_max(sf, shift, level=0):
    """File binding energy where a region's fitted envelope (peaks only) is highest."""
    return float(sf.x[np.argmax(sf.envelope[level])] - shift)


# --------------------------------------------------------------------------- real files
def test_feranick_unlabelled_blocks_give_numbers(realdata):
    """Omicron EIS export: six blocks without labels (MANIFEST: survey, C 1s, Si 2p, valence, two all-zero)."""
    m = sp.read(realdata / "xps" / "feranick_2.vms")
    r = sp.xps.fit_profile(m)
    lines = r.meta["lines"]
    assert lines["block 2"] == "C 1s" and lines["block 3"] == "Si 2p" and lines["block 4"] is None
    assert any("block 2: no line label in the file; identified as C 1s" in w for w in r.warnings)
    reg = r.tables["regions"].set_index("region")
    assert reg.loc["block 1", "kind"] == "survey"
    for b in ("block 5", "block 6"):  # all zeros: said, not fitted
        assert reg.loc[b, "kind"] == "empty" and not reg.loc[b, "fitted"]
        assert any(w.startswith(f"{b}: no counts") for w in r.warnings)
    assert not reg.loc["block 4", "quantified"] and "no line label" in reg.loc["block 4", "reason"]
    assert any(w.startswith("block 4: no line label") and "not quantified" in w for w in r.warnings)
    shift = r.meta["charge_shift_eV"]
    # MANIFEST: block 2 maximum at 284.9 eV, block 3 at 99.5 eV
    assert _envelope_max(r.native["block 2"], shift) == pytest.approx(284.9, abs=0.15)
    assert _envelope_max(r.native["block 3"], shift) == pytest.approx(99.5, abs=0.15)
    c = r.tables["components"]
    hi = c[c.basis == "regions"]
    assert set(hi.line) == {"C 1s", "Si 2p"}
    assert np.all(np.isfinite(hi[["be_eV", "area", "atomic_percent"]].to_numpy(float)))
    assert hi.atomic_percent.sum() == pytest.approx(100)
    # counts summed over 100 (C 1s) and 25 (Si 2p) scans: compared as count rates
    assert any("count rates" in w for w in r.warnings)
    ratio = hi.set_index("line").area
    t = {b["name"]: b["dwell_s"] * b["n_scans"] for b in m.attrs["acquisition"]["regions"]}
    at = hi.set_index("line").atomic_percent
    expect = (ratio["C 1s"] / t["block 2"] / rsf_for("C 1s")) / (ratio["Si 2p"] / t["block 3"] / rsf_for("Si 2p"))
    assert at["C 1s"] / at["Si 2p"] == pytest.approx(expect, rel=1e-6)
    # the survey: Si, C and O by position; the Si 2s plasmon (~17 eV above) names no element (not S 2p)
    assert set(r.meta["survey_elements"]["block 1"]) == {"Si", "C", "O"}
    sv = c[c.region == "block 1"]
    assert set(sv.name) == {"Si", "C", "O"} and sv.atomic_percent.sum() == pytest.approx(100)
    assert r.quantities["survey(Si).atomic_percent"].value > 50
    feats = r.tables["survey"]
    loss = feats[(feats.be_eV > 160) & (feats.be_eV < 175)]
    assert len(loss) == 1 and loss.assignment.iloc[0].startswith("energy loss?")


def test_regular_survey_only_gives_numbers(realdata):
    """SPECS/CasaXPS survey of MgFe2O4 on a kinetic-energy axis (MANIFEST: strongest feature at KE 1180.61 eV,
    apparent BE 306.0 eV, is an Auger line consistent with Mg KLL)."""
    m = sp.read(realdata / "xps" / "regular.vms")
    r = sp.xps.fit_profile(m)
    feats = r.tables["survey"]
    top = feats.loc[feats.height.idxmax()]
    wf = m.attrs["acquisition"]["work_function_eV"]
    assert top.be_file_eV == pytest.approx(306.0 - wf, abs=0.5)      # BE = hv - KE - work function
    assert top.assignment.startswith("Mg KLL (Auger)")             # labelled, never quantified as a line
    assert set(r.meta["survey_elements"]["Survey"]) == {"O", "Mg", "Fe", "C"}
    sp_ = r.tables["species"].set_index("species")
    assert set(sp_.index) == {"O", "Mg", "Fe", "C"} and (sp_.basis == "survey Survey").all()
    assert np.all(np.isfinite(sp_.max_atomic_percent)) and sp_.max_atomic_percent.sum() == pytest.approx(100)
    c = r.tables["components"].set_index("name")
    assert {"O": "O 1s", "Fe": "Fe 2p", "C": "C 1s"}.items() <= dict(c.line).items()
    assert np.all(np.isfinite(c[["be_eV", "area"]].to_numpy(float)))
    # the survey's C 1s feature charge-references it (no C 1s region) and says so
    assert r.quantities["charge_shift_eV"].value == pytest.approx(2.9, abs=0.3)
    assert any(w.startswith("charge reference from the survey") for w in r.warnings)
    assert any("atomic % from the survey only" in w for w in r.warnings)
    assert c.loc["O", "be_eV"] == pytest.approx(530.0, abs=0.5)     # O 1s of an oxide, charge-corrected


def test_multipak_mos2_every_region_and_neutral_names(realdata):
    """MultiPak MoS2 film: all five regions quantified; O 1s is not called Li2CO3; foreign lines inside a
    region (Mo 3p3/2 in N 1s, S 2s in Mo 3d) are named and left out of the element's at %."""
    m = sp.read(realdata / "xps" / "Mutlipak_vms.npl")
    r = sp.xps.fit_profile(m)
    c = r.tables["components"]
    q = c[c.quantified]
    assert set(q.region) == {"C 1s", "O 1s", "S 2p", "N 1s", "Mo 3d"}
    assert q.atomic_percent.sum() == pytest.approx(100)
    assert "Li2CO3" not in set(c.name)
    o = c[c.region == "O 1s"].name.tolist()
    assert o == ["O 1s @ 531.7 eV"]
    assert any("not named Li2CO3" in w for w in r.warnings)
    assert set(c[c.region == "N 1s"].name) >= {"Mo 3p"} and not c[c.name == "Mo 3p"].quantified.any()
    assert not c[(c.region == "Mo 3d") & (c.name == "S 2s")].quantified.any()
    shift = r.meta["charge_shift_eV"]
    assert shift == pytest.approx(-0.05, abs=0.15)                  # C 1s max at 284.85 eV (MANIFEST)
    for reg, be in (("C 1s", 284.85), ("S 2p", 161.40), ("Mo 3d", 228.45)):
        assert _envelope_max(r.native[reg], shift) == pytest.approx(be, abs=0.15), reg
    at = q.groupby("region").atomic_percent.sum()
    assert 1.5 < at["S 2p"] / at["Mo 3d"] < 2.5                   # MoS2


# --------------------------------------------------------------------------- generated spectra
def _file(tmp_path, regions, name="g.vms", seed=0, levels=1, scale=3000.0, etch=None):
    """regions: {"Mo 3d": (lo, hi, [(center, fwhm, conc, [(offset, ratio)]), ...]), ...}; areas = conc x RSF x scale."""
    out = []
    for k, (reg, (lo, hi, lines)) in enumerate(regions.items()):
        be = np.round(np.arange(hi, lo - 1e-9, -0.05), 3)
        spec = [{"center": c, "fwhm": f, "mixing": 0.3, "satellites": sats} for c, f, _, sats in lines]
        conc = np.array([np.broadcast_to(np.asarray(cn, float), (levels,)) for _, _, cn, _ in lines]).T
        areas = conc * rsf_for(reg) * scale
        Y, _, _ = region_spectra(be, spec, areas, base=300, seed=seed + k)
        sp_, tr = reg.split()
        out.append({"species": sp_, "transition": tr, "be": be, "Y": Y})
    path = tmp_path / name
    write_vamas(path, out, etch if etch is not None else [0.0] * 1 if levels == 1 else list(range(levels)))
    return R.read(path)


MOS2 = {
    "C 1s": (279.0, 292.0, [(284.8, 1.3, 20.0, [])]),
    "O 1s": (526.0, 537.0, [(531.5, 1.6, 10.0, [])]),
    "S 2p": (157.0, 168.0, [(162.0, 0.9, 46.0, [(1.18, 0.5)])]),
    "Mo 3d": (222.0, 238.0, [(229.0, 1.0, 23.0, [(3.13, 2 / 3)]), (226.5, 1.8, 46.0 * 1.43 / 9.5, [])]),
}


def test_mos2_like_set_gets_no_li2co3(tmp_path):
    """Mo 3d, S 2p, O 1s at 531.5 eV and C 1s without carbonate: O 1s keeps a neutral name."""
    m = _file(tmp_path, MOS2)
    r = sp.xps.fit_profile(m)
    c = r.tables["components"]
    names = c[c.region == "O 1s"].name.tolist()
    assert len(names) == 1 and re.fullmatch(r"O 1s @ 531\.[456] eV", names[0])
    assert any(re.search(r"O 1s at 531\.\d eV is in the Li2CO3 window, but the file has no C 1s feature at "
                         r"289-290\.8 eV and no Li 1s line: not named Li2CO3", w) for w in r.warnings)
    assert "Li2CO3" not in set(c.name) and c[c.region == "C 1s"].name.tolist() == ["C-C"]
    # the S 2s shoulder beside Mo 3d5/2 is found (from the residual), named and not counted as Mo
    s2s = c[(c.region == "Mo 3d") & (c.name == "S 2s")]
    assert len(s2s) == 1 and not s2s.quantified.iloc[0] and s2s.be_eV.iloc[0] == pytest.approx(226.5, abs=0.15)
    q = c[c.quantified].set_index("region").atomic_percent
    truth = {"C 1s": 20.0, "O 1s": 10.0, "S 2p": 46.0, "Mo 3d": 23.0}
    tot = sum(truth.values())
    for reg, v in truth.items():
        assert q[reg] == pytest.approx(100 * v / tot, abs=1.5), reg


def test_li2co3_consistent_set_is_named(tmp_path):
    """Li 1s, C 1s with carbonate at 290.0 eV and O 1s at 531.5 eV: both carbonate components are Li2CO3."""
    m = _file(tmp_path, {
        "Li 1s": (50.0, 60.0, [(55.2, 1.4, 30.0, [])]),
        "C 1s": (279.0, 294.0, [(284.8, 1.3, 15.0, []), (290.0, 1.4, 10.0, [])]),
        "O 1s": (526.0, 537.0, [(531.5, 1.6, 30.0, [])]),
    }, scale=20000.0)
    r = sp.xps.fit_profile(m)
    c = r.tables["components"]
    assert c[c.region == "O 1s"].name.tolist() == ["Li2CO3"]
    assert set(c[c.region == "C 1s"].name) == {"C-C", "Li2CO3"}
    assert c[c.region == "Li 1s"].name.tolist() == ["Li+"]
    assert r.quantities["species(Li2CO3).present"].value == 1.0
    at = r.tables["species"].set_index("species").max_atomic_percent
    assert at["Li2CO3"] == pytest.approx(100 * 40 / 85, abs=2.0)   # summed over C 1s and O 1s


def test_template_component_without_signal_is_not_detected(tmp_path):
    """A template component where the data hold nothing: warned, NaN, not detected, left out of the at %;
    the others' at % do not move beyond their errors."""
    m = _file(tmp_path, {"C 1s": (278.0, 294.0, [(284.8, 1.3, 30.0, []), (286.5, 1.3, 10.0, [])]),
                         "O 1s": (526.0, 537.0, [(531.5, 1.6, 20.0, [])])})
    base = {"C 1s": [{"name": "C-C", "center": 284.8}, {"name": "C-O", "center": 286.5}],
            "O 1s": [{"name": "O", "center": 531.5}]}
    ghost = {**base, "C 1s": base["C 1s"] + [{"name": "ghost", "center": 291.0}]}
    r0 = sp.xps.fit_profile(m, model=base)
    r1 = sp.xps.fit_profile(m, model=ghost)
    c1 = r1.tables["components"].set_index("name")
    assert not c1.loc["ghost", "detected"] and c1.loc["ghost", "quantified"]
    assert np.isnan(c1.loc["ghost", "area"]) and np.isnan(c1.loc["ghost", "atomic_percent"])
    assert np.isnan(r1.quantities["C 1s/ghost.be_eV"].value)
    assert any(w.startswith("C 1s: no signal near 291 eV, where ghost was given") for w in r1.warnings)
    sp1 = r1.tables["species"].set_index("species")
    assert not sp1.loc["ghost", "detected"] and np.isnan(sp1.loc["ghost", "max_atomic_percent"])
    assert r1.quantities["species(ghost).present"].value == 0.0
    c0 = r0.tables["components"].set_index("name")
    for n in ("C-C", "C-O", "O"):
        err = np.hypot(c0.loc[n, "atomic_percent_stderr"], c1.loc[n, "atomic_percent_stderr"])
        assert abs(c1.loc[n, "atomic_percent"] - c0.loc[n, "atomic_percent"]) < 2 * err, n
    assert c1.loc[["C-C", "C-O", "O"], "atomic_percent"].sum() == pytest.approx(100)
    # the same check in the single-spectrum path (lmfit, fit_region)
    fr = sp.xps.fit_region(m, "C 1s", ghost["C 1s"])
    row = fr.table.set_index("name").loc["ghost"]
    assert not row["detected"] and np.isnan(row["area"]) and np.isnan(fr.quantities["C 1s/ghost.area"].value)


def test_component_vanishing_with_depth_is_not_detected_there(tmp_path):
    """In a profile, a component is judged at every level: gone at the last level -> NaN there only."""
    m = _file(tmp_path, {"N 1s": (392.0, 405.0, [(398.6, 1.3, [20.0, 10.0, 0.0], [])]),
                         "C 1s": (279.0, 291.0, [(284.8, 1.3, [30.0, 30.0, 30.0], [])])}, levels=3,
              etch=[0.0, 60.0, 120.0])
    r = sp.xps.fit_profile(m, model={"N 1s": [{"name": "Li3N", "center": 398.6}],
                                     "C 1s": [{"name": "C-C", "center": 284.8}]})
    c = r.tables["components"]
    n = c[c.name == "Li3N"].sort_values("level")
    assert n.detected.tolist() == [True, True, False]
    assert np.isfinite(n.atomic_percent.iloc[:2]).all() and np.isnan(n.atomic_percent.iloc[2])
    cc = c[c.name == "C-C"].sort_values("level")
    assert cc.atomic_percent.iloc[2] == pytest.approx(100.0)
    assert cc.atomic_percent.iloc[0] == pytest.approx(100 * 30 / 50, abs=1.5)
    assert any("where Li3N was given" in w and "at 1 of 3 levels [2]" in w for w in r.warnings)


def test_counts_compared_as_count_rates(tmp_path):
    """A region recorded with 4x the scans has 4x the counts: the at % must not change."""
    m = _file(tmp_path, {"C 1s": (279.0, 291.0, [(284.8, 1.3, 30.0, [])]),
                         "O 1s": (526.0, 537.0, [(531.5, 1.6, 20.0, [])])})
    r0 = sp.xps.fit_profile(m)
    m4 = m.copy(deep=True)
    sel = m4.coords["region"].values == "O 1s"
    m4.values[:, sel] *= 4
    for reg in m4.attrs["acquisition"]["regions"]:
        if reg["name"] == "O 1s":
            reg["n_scans"] = 4
    r4 = sp.xps.fit_profile(m4)
    a0 = r0.tables["components"].set_index("region").atomic_percent
    a4 = r4.tables["components"].set_index("region").atomic_percent
    assert a4["O 1s"] == pytest.approx(a0["O 1s"], abs=0.05)
    assert any("count rates" in w for w in r4.warnings)


def test_unnamed_blocks_are_read_and_quantified(tmp_path):
    """Blocks labelled 'None' (previously "region 'None' ... at level 1"): each its own region, named
    ``block k``, identified by position, quantified."""
    regs = {"C 1s": (279.0, 291.0, [(284.8, 1.3, 30.0, [])]), "O 1s": (526.0, 537.0, [(531.5, 1.6, 20.0, [])])}
    out = []
    for k, (reg, (lo, hi, lines)) in enumerate(regs.items()):
        be = np.round(np.arange(hi, lo - 1e-9, -0.05), 3)
        spec = [{"center": c, "fwhm": f, "mixing": 0.3} for c, f, _, _ in lines]
        Y, _, _ = region_spectra(be, spec, [[cn * rsf_for(reg) * 3000 for _, _, cn, _ in lines]], base=300, seed=k)
        out.append({"species": "None", "transition": "None", "be": be, "Y": Y})
    path = tmp_path / "none.vms"
    write_vamas(path, out, [0.0], etch_variable=False)
    m = R.read(path)
    assert list(dict.fromkeys(m.coords["region"].values)) == ["block 1", "block 2"]
    r = sp.xps.fit_profile(m)
    assert r.meta["lines"] == {"block 1": "C 1s", "block 2": "O 1s"}
    at = r.tables["components"].set_index("line").atomic_percent
    assert at["C 1s"] == pytest.approx(60, abs=1.5) and at["O 1s"] == pytest.approx(40, abs=1.5)
    # the user can say what a block holds
    r2 = sp.xps.fit_profile(m, lines={"block 2": "O 1s"})
    assert r2.meta["lines"]["block 2"] == "O 1s"
    assert not any(w.startswith("block 2: no line label") for w in r2.warnings)


def test_same_name_blocks_with_different_axes_are_separate_regions(tmp_path):
    """Two blocks share a name but not an energy axis: separate regions, not etch levels."""
    be1 = np.round(np.arange(291.0, 279.0 - 1e-9, -0.05), 3)
    be2 = np.round(np.arange(300.0, 270.0 - 1e-9, -0.5), 3)
    y1, _, _ = region_spectra(be1, [{"center": 284.8, "fwhm": 1.3, "mixing": 0.3}], [[30000.0]], base=300, seed=1)
    y2, _, _ = region_spectra(be2, [{"center": 284.8, "fwhm": 1.6, "mixing": 0.3}], [[30000.0]], base=300, seed=2)
    path = tmp_path / "dup.vms"
    write_vamas(path, [{"species": "C", "transition": "1s", "be": be1, "Y": y1},
                       {"species": "C", "transition": "1s", "be": be2, "Y": y2}], [0.0], etch_variable=False)
    m = R.read(path)
    assert list(dict.fromkeys(m.coords["region"].values)) == ["C 1s", "C 1s #2"]
    assert "more than once at one level" in m.attrs["acquisition"]["levels_note"]
    r = sp.xps.fit_profile(m)
    assert r.meta["lines"] == {"C 1s": "C 1s", "C 1s #2": "C 1s"}
    assert any("a second C 1s region" in w for w in r.warnings)   # one line counted once
    c = r.tables["components"]
    assert c[c.quantified].region.unique().tolist() == ["C 1s"]
    # without etch times in the block comments the names' repetition would make levels: different axes
    # make them separate regions instead
    text = path.read_text().replace("Etch Time = 0 s", "no etch").replace("Etch Level = 0", "level")
    (tmp_path / "dup2.vms").write_text(text)
    m2 = R.read(tmp_path / "dup2.vms")
    assert list(dict.fromkeys(m2.coords["region"].values)) == ["C 1s (block 1)", "C 1s (block 2)"]
    assert "different energy axes" in m2.attrs["acquisition"]["levels_note"]
    assert m2.sizes["level"] == 1


# --------------------------------------------------------------------------- automatic mode on real files
def _auto_components(r, reg):
    """[(name, charge-corrected BE, doublet?, quantified)] of a region fitted without a template, ascending BE."""
    sf = r.native[reg]
    c = r.tables["components"]
    q = dict(zip(c[c.region == reg].name, c[c.region == reg].quantified))
    return sorted(((n, float(np.nanmedian(sf.comps[n]["center"])), bool(p.satellites), bool(q[n]))
                   for n, p in zip(sf.comps, sf.spec.peaks)), key=lambda t: t[1])


def test_multipak_mos2_automatic_components_as_an_analyst_lists_them(realdata):
    """No template: the toolkit's model selection per region. What an XPS analyst lists for a MoS2 film
    (PHI VersaProbe II, Al Kα; charge-referenced to adventitious C 1s at 284.8 eV) and why:

    * C 1s: adventitious carbon, C-C at 284.8 eV (the reference); its C-O / C=O shoulders are not
      resolved in this file (one broad line; any further component lies on the high-BE side);
    * O 1s: one oxygen feature near 531.7 eV (adsorbed OH / water, surface oxide), 530-533 eV;
    * S 2p: the sulfide of MoS2 only, ONE spin-orbit doublet (2p3/2 161-162.3 eV; the partner is the
      same state, not a second one); no sulfate near 168-169 eV;
    * Mo 3d: S 2s of the sulfide at 225.5-226.8 eV (another element's line, not counted as Mo), the
      Mo4+ 3d doublet of MoS2 (3d5/2 228.2-229.3 eV, strongest); any further Mo component is an
      oxidised state (Mo5+/Mo6+, >= 1 eV above Mo4+), a doublet too;
    * N 1s: Mo 3p3/2 at 393.5-395.5 eV (not counted as N) and one N 1s component at 398.5-400.5 eV;
    * S : Mo (sulfide S over every Mo state) near 2 (1.5-2.5).
    """
    m = sp.read(realdata / "xps" / "Mutlipak_vms.npl")
    r = sp.xps.fit_profile(m)
    assert r.meta["lines"] == {reg: reg for reg in ("C 1s", "O 1s", "S 2p", "N 1s", "Mo 3d")}
    c1s = _auto_components(r, "C 1s")
    main = max(c1s, key=lambda t: r.native["C 1s"].comps[t[0]]["area"][0])
    assert main[0] == "C-C" and main[1] == pytest.approx(284.8, abs=0.1)
    assert all(284.6 <= be <= 290.0 for _, be, _, _ in c1s)
    o1s = _auto_components(r, "O 1s")
    assert 1 <= len(o1s) <= 2 and all(530.0 <= be <= 533.0 for _, be, _, _ in o1s)
    s2p = _auto_components(r, "S 2p")
    assert len(s2p) == 1 and s2p[0][2] and 161.0 <= s2p[0][1] <= 162.3
    mo = _auto_components(r, "Mo 3d")
    s2s = [t for t in mo if t[0] == "S 2s"]
    assert len(s2s) == 1 and 225.5 <= s2s[0][1] <= 226.8 and not s2s[0][3]
    mos = [t for t in mo if t[0] != "S 2s"]
    areas = {t[0]: float(r.native["Mo 3d"].comps[t[0]]["area"][0]) for t in mos}
    mo4 = max(mos, key=lambda t: areas[t[0]])
    assert mo4[2] and 228.2 <= mo4[1] <= 229.3 and mo4[3]
    assert all(t[2] and t[1] >= mo4[1] + 1.0 for t in mos if t is not mo4)
    n1s = _auto_components(r, "N 1s")
    assert [t[0] for t in n1s if 393.5 <= t[1] <= 395.5] == ["Mo 3p"] and not n1s[0][3]
    assert len([t for t in n1s if 398.5 <= t[1] <= 400.5 and t[3]]) == 1
    at = r.tables["components"].query("quantified").groupby("region").atomic_percent.sum()
    assert 1.5 < at["S 2p"] / at["Mo 3d"] < 2.5


def test_feranick_clean_si_automatic_components(realdata):
    """Clean Si(111) (Omicron, unlabelled blocks identified by position): an analyst lists elemental Si
    as ONE Si 2p doublet (2p3/2 99.3 eV in the file, 2p1/2 0.61 eV above) and no SiO2 (103-104 eV: the
    surface is clean); C 1s contamination is one line at the reference."""
    r = sp.xps.fit_profile(sp.read(realdata / "xps" / "feranick_2.vms"))
    shift = r.meta["charge_shift_eV"]
    si = _auto_components(r, "block 3")
    assert len(si) == 1 and si[0][2] and si[0][1] - shift == pytest.approx(99.3, abs=0.25)
    c = _auto_components(r, "block 2")
    assert len(c) == 1 and c[0][1] == pytest.approx(284.8, abs=0.1)
