"""DC polarisation (Bruce–Vincent t+, electronic conductivity) and galvanostatic cycling (CCD,
overpotential) recovered from generated data with noise; the study's files from sample_data/echem."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ParameterError, SpecprocError
from specproc.techniques.echem import synth

DATA = Path(__file__).resolve().parents[2] / "sample_data" / "echem"
TRUTH = json.loads((DATA / "truth.json").read_text())
F = synth.frequencies(7e6, 0.1)


def _linked(folder: Path, tplus, r_el=580.0, ri0=30.0, riss=35.0, dv=0.01, seed=0, noise=0.001):
    """An EC-Lab linked experiment (PEIS - CA - PEIS) of a Li|SE|Li cell with transference number ``tplus``."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    circuit = "R0-p(R1,CPE1)-p(R2,CPE2)"
    for k, ri in ((1, ri0), (3, riss)):
        v = {"R0": 0.6 * r_el, "R1": 0.4 * r_el, "CPE1_Q": 5e-9, "CPE1_n": 0.8, "R2": ri, "CPE2_Q": 3e-6, "CPE2_n": 0.9}
        synth.write_mpt_eis(folder / f"c_0{k}_PEIS_C01.mpt", [(F, synth.impedance(circuit, v, F, noise, rng))])
    i0, iss = dv / (r_el + ri0), dv / (r_el / tplus + riss)
    t, E, I = synth.polarisation(dv, i0, iss, 1500.0, 3 * 3600.0, rng=rng)
    synth.write_mpt_time(folder / "c_02_CA_C01.mpt", t, E, I, "Chronoamperometry / Chronocoulometry")
    return i0, iss


@pytest.mark.parametrize("tplus, seed", [(0.9998, 1), (0.95, 2), (0.6, 3)])
def test_bruce_vincent_recovers_tplus(tmp_path, tplus, seed):
    _linked(tmp_path / "bv", tplus, seed=seed)
    r = sp.echem.transference(sp.read(tmp_path / "bv"))
    q = r.quantities["transference_number"]
    assert abs(q.value - tplus) < max(3 * q.stderr, 1e-4) and q.stderr < 0.002, (q, tplus)
    assert r.quantities["R0_ohm"].value == pytest.approx(30, abs=3 * r.quantities["R0_ohm"].stderr + 0.1)
    assert r.meta["kind"] == "polarisation" and r.meta["cell"] == "symmetric"


def test_bruce_vincent_with_given_resistances_and_warnings(tmp_path):
    i0, iss = _linked(tmp_path / "bv", 0.9, dv=0.05, seed=4)
    ca = sp.read(tmp_path / "bv" / "c_02_CA_C01.mpt")
    with pytest.raises(ParameterError, match="impedance spectra|interfacial") as e:
        sp.echem.transference(ca)                           # no spectra, cell unknown
    assert "c_02_CA_C01.mpt" in str(e.value)
    r = sp.echem.transference(ca, R0_ohm=30, Rss_ohm=35, R0_ohm_stderr=0.3, Rss_ohm_stderr=0.3)
    assert r.quantities["transference_number"].value == pytest.approx(0.9, abs=0.01)
    assert any("small polarisation" in w for w in r.warnings)       # 50 mV step


def test_study_polarisation_files():
    for name in ("LiBH4-70LiNBH_BV_30C", "LiBH4-70LiNBH_BV_60C"):
        tr = TRUTH["files"][name]
        r = sp.echem.transference(sp.read(DATA / name))
        q = r.quantities["transference_number"]
        assert abs(q.value - tr["transference_number"]) < 3 * q.stderr and q.stderr < 0.001
        assert q.value - 2 * q.stderr > 0.99
        assert r.quantities["I0_A"].value == pytest.approx(tr["I0_A"], rel=1e-3)
        assert r.quantities["Iss_A"].value == pytest.approx(tr["Iss_A"], rel=1e-3)
    tr = TRUTH["files"]["LiBH4-70LiNBH_DC_blocking.DTA"]
    r = sp.echem.transference(sp.read(DATA / "LiBH4-70LiNBH_DC_blocking.DTA"), cell="blocking", thickness_cm=0.1,
                              thickness_cm_stderr=0.002, area_cm2=0.785, area_cm2_stderr=0.008)
    s = r.quantities["electronic_conductivity_S_cm"]
    assert abs(s.value - tr["electronic_conductivity_S_cm"]) < 3 * s.stderr and s.stderr / s.value < 0.05
    with pytest.raises(ParameterError, match="thickness"):
        sp.echem.transference(sp.read(DATA / "LiBH4-70LiNBH_DC_blocking.DTA"), cell="blocking")


# ------------------------------------------------------------------------------------ cycling
@pytest.mark.parametrize("fail_at, mode, asr", [(7.5, "collapse", 31.25), (3.5, "noisy", 60.0), (2.0, "collapse", 100.0)])
def test_ccd_first_failing_step(tmp_path, fail_at, mode, asr):
    levels = np.round(np.arange(0.5, fail_at + 1.01, 0.5), 2)
    t, E, I = synth.cycling(levels, 0.785, asr, 0.25, fail_level=fail_at, fail_mode=mode,
                            rng=np.random.default_rng(int(fail_at * 10)))
    p = synth.write_csv_time(tmp_path / "ccd.csv", t, E, I, meta={"control": "galvanostatic"})
    r = sp.echem.ccd(sp.read(p), area_cm2=0.785)
    assert r.quantities["ccd_mA_cm2"].value == pytest.approx(fail_at, rel=1e-3)
    assert r.quantities["ccd.last_stable_mA_cm2"].value == pytest.approx(fail_at - 0.5, rel=1e-3)
    assert r.quantities["short_circuit.present"].value == 1
    assert ("collapsed" if mode == "collapse" else "noise") in r.meta["failure"]


def test_ccd_without_failure_is_a_lower_bound(tmp_path):
    t, E, I = synth.cycling([0.5, 1.0, 1.5, 2.0], 0.785, 31.25, 0.25, rng=np.random.default_rng(1))
    p = synth.write_csv_time(tmp_path / "ok.csv", t, E, I)          # no '# control:': decided from the data
    r = sp.echem.analyse(sp.read(p), area_cm2=0.785)
    assert r.meta["kind"] == "galvanostatic" and "ccd_mA_cm2" not in r.quantities
    assert r.quantities["ccd.lower_bound_mA_cm2"].value == pytest.approx(2.0)
    assert any("above the highest" in w for w in r.warnings)


def test_study_cycling_files():
    r = sp.echem.ccd(sp.read(DATA / "LiBH4-70LiNBH_CCD.mpt"), area_cm2=0.785)
    assert r.quantities["ccd_mA_cm2"].value == pytest.approx(7.5)
    r = sp.echem.ccd(sp.read(DATA / "LiBH4_CCD.csv"))                   # area from the file's header
    assert r.quantities["ccd_mA_cm2"].value == pytest.approx(3.5) and any("header" in w for w in r.warnings)
    r = sp.echem.ccd(sp.read(DATA / "LiBH4-70LiNBH_cycling_4mAcm2.mpt"), area_cm2=0.785)
    q = r.quantities
    assert q["current_density_mA_cm2"].value == pytest.approx(4.0) and q["short_circuit.present"].value == 0
    assert q["cycling.duration_h"].value == pytest.approx(100, abs=0.1)
    assert q["overpotential_mV"].value == pytest.approx(125, abs=1.5)
    assert q["overpotential.first_mV"].value < q["overpotential.last_mV"].value


def test_cycling_needs_an_area_and_alternating_current(tmp_path):
    t, E, I = synth.cycling([1.0], 1.0, 30.0, 0.25, rng=np.random.default_rng(0))
    p = synth.write_csv_time(tmp_path / "c.csv", t, E, I, meta={"control": "galvanostatic"})
    with pytest.raises(ParameterError, match="area") as e:
        sp.echem.ccd(sp.read(p))
    assert "c.csv" in str(e.value)
    p2 = synth.write_csv_time(tmp_path / "dc.csv", t, np.abs(E), np.abs(I), meta={"control": "galvanostatic"})
    with pytest.raises(SpecprocError, match="half-cycle"):
        sp.echem.ccd(sp.read(p2), area_cm2=1.0)
