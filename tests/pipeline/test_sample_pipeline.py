"""The study pipeline (pipelines/libh4_linbh.yaml) over sample_data/ reproduces the truth.

Parts whose sample data or processors are not installed yet are skipped; claims of techniques
without processors must read ``no data``.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
PIPELINE = REPO / "pipelines" / "libh4_linbh.yaml"
NMR_TRUTH = REPO / "sample_data" / "nmr" / "truth.json"
XRD_TRUTH = REPO / "sample_data" / "xrd" / "truth.json"


def _processor_ok(name: str) -> bool:
    from specproc import plugins
    from specproc.core.errors import PluginError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plugins.get("processors", name)
        return True
    except PluginError:
        return False


#: one xdist worker (tests/conftest.py ``pytest_xdist_make_scheduler``) builds the session's demo run for these tests and
#: tests/report/test_demo_report.py (tests/conftest.py ``demo_run``)
pytestmark = pytest.mark.xdist_group("demo_run")


@pytest.fixture(scope="module")
def study(demo_run):
    """The session's cold run (tests/conftest.py ``demo_run``) and a warm run into the same folder."""
    if not NMR_TRUTH.is_file() and not XRD_TRUTH.is_file():
        pytest.skip("no sample data yet (sample_data/*/truth.json)")
    from specproc.pipeline import run_pipeline

    assert Path(demo_run.summary.pipeline_path).resolve() == PIPELINE.resolve()
    warm = run_pipeline(PIPELINE, demo_run.out, jobs=2)   # timings: benchmarks/bench_pipeline.py
    return dict(cold=demo_run.summary, warm=warm, out=demo_run.out)


def _claims(out: Path) -> dict:
    doc = json.loads((out / "exports" / "results.json").read_text())
    return {c["id"]: c for c in doc["claims"]}


def test_runs_clean_and_warm_run_is_cached(study):
    cold, warm = study["cold"], study["warm"]
    assert cold.failures == [], [f.error for f in cold.failures]
    assert cold.exit_code == 0
    assert warm.n_cached == len(warm.records) == len(cold.records)
    assert [c.verdict for c in warm.claims] == [c.verdict for c in cold.claims]
    html = Path(cold.report_path).read_text()
    assert "Evidence summary" in html and "id='provenance'" in html


def test_nmr_components_match_truth(study):
    if not NMR_TRUTH.is_file() or not _processor_ok("nmr.deconvolve"):
        pytest.skip("NMR sample data or nmr.deconvolve not available")
    truth = json.loads(NMR_TRUTH.read_text())
    q = pd.read_csv(study["out"] / "exports" / "quantities.csv")
    checked = 0
    for entry in truth.values():
        if entry.get("format") != "bruker":
            continue
        rows = q[q.file.str.endswith("/" + entry["path"])]
        if rows.empty:
            continue  # not in the pipeline
        comps = {n: g.set_index("property")["value"] for n, g in rows.groupby("component")}
        for c in entry["components"]:
            # single-line spectra may name their component differently in the pipeline (e.g. 1H "H")
            got = comps.get(c["name"]) if c["name"] in comps else (
                next(iter(comps.values())) if len(comps) == 1 and len(entry["components"]) == 1 else None)
            assert got is not None, f"{entry['path']}: component {c['name']} missing"
            broad = c["fwhm_ppm"] > 6
            where = f"{entry['path']} {c['name']}"
            # a broad line under a narrow one is located to a fraction of its own width only
            assert got["center_ppm"] == pytest.approx(c["center_ppm"], abs=max(0.1, 0.15 * c["fwhm_ppm"])), where
            assert got["fwhm_ppm"] == pytest.approx(c["fwhm_ppm"], rel=0.1 if broad else 0.06), where
            assert got["area_fraction"] == pytest.approx(c["area_fraction"], abs=0.02), where
            checked += 1
    assert checked >= 10


def test_nmr_claims_reproduce_headline_numbers(study):
    if not NMR_TRUTH.is_file() or not _processor_ok("nmr.deconvolve"):
        pytest.skip("NMR sample data or nmr.deconvolve not available")
    truth = json.loads(NMR_TRUTH.read_text())

    def comp(key, name):
        return next(c for c in truth[key]["components"] if c["name"] == name)

    claims = _claims(study["out"])
    shift = comp("LiBH4-70LiNBH_11B", "BH4")["center_ppm"] - comp("LiBH4_11B", "BH4")["center_ppm"]
    assert claims["bh4_shift"]["verdict"] == "supported"
    assert claims["bh4_shift"]["value"] == pytest.approx(shift, abs=0.1)
    frac = comp("LiBH4-70LiNBH_7Li", "Li_narrow")["area_fraction"]
    assert claims["li7_narrow_fraction"]["verdict"] == "supported"
    assert claims["li7_narrow_fraction"]["value"] == pytest.approx(frac, abs=0.02)
    w = {k: truth[k]["components"][0]["fwhm_ppm"] for k in ("LiBH4_1H", "LiNBH_1H", "LiBH4-70LiNBH_1H")}
    h1 = claims["h1_narrowing"]
    assert h1["verdict"] == "supported"
    got = [c["comparison"]["value"] for c in h1["checks"]]
    want = [w["LiBH4-70LiNBH_1H"] - w["LiBH4_1H"], w["LiBH4-70LiNBH_1H"] - w["LiNBH_1H"]]
    assert got == pytest.approx(want, abs=0.1)


def test_xrd_matches_truth_and_claims(study):
    if not XRD_TRUTH.is_file() or not _processor_ok("xrd.analyse"):
        pytest.skip("XRD sample data or xrd.analyse not available")
    truth = json.loads(XRD_TRUTH.read_text())["samples"]
    q = pd.read_csv(study["out"] / "exports" / "quantities.csv")
    q = q[q.technique == "xrd"]
    all_phases = {p["name"] for t in truth.values() for p in t["phases"]}
    d101 = {}
    for t in truth.values():
        rows = q[q.file.str.endswith("/" + t["file"])]
        if rows.empty:
            continue
        val = dict(zip(rows.name, rows.value))
        for ph in all_phases:
            assert val.get(f"phase({ph}).present", 0.0) == (1.0 if ph in t["present"] else 0.0), (t["file"], ph)
        for ph in t["phases"]:
            want = ph["reflections"].get("101", {}).get("d_nm") if ph["name"] == "LiBH4" else None
            if want is None:
                continue
            got = val.get("phase(LiBH4).hkl(101).d_nm", val.get("hkl(101).d_nm"))
            assert got == pytest.approx(want, abs=0.002), t["file"]
            d101[t["file"]] = got
        if t.get("amorphous_hump") and not t["present"]:
            assert val["amorphous_fraction"] > 0.5
    claims = _claims(study["out"])
    assert claims["xrd_phases"]["verdict"] == "supported", claims["xrd_phases"]["reason"]
    d = claims["d101_expansion"]
    assert d["verdict"] == "supported", d["reason"]
    ref = truth["LiBH4_as_received"]["phases"][0]["reflections"]["101"]["d_nm"]
    comp = truth["LiBH4-70LiNBH_heated"]["phases"][0]["reflections"]["101"]["d_nm"]
    assert d["value"] == pytest.approx(100 * (comp / ref - 1), abs=0.3)


def test_claims_without_processors_have_no_data(study):
    claims = _claims(study["out"])
    for cid, tech in (("ftir_bh_redshift", "ftir"), ("eels_pistar_shift", "eels"),
                      ("xps_interphase_species", "xps"), ("xps_interphase_thickness", "xps"),
                      ("afm_modulus_ratio", "afm")):
        if _any_processor(tech):
            continue
        assert claims[cid]["verdict"] == "no data", (cid, claims[cid])
        assert "no processor registered" in claims[cid]["reason"]


def _any_processor(tech: str) -> bool:
    from specproc import plugins

    return any(n.split(".", 1)[0] == tech for n in plugins.available("processors"))


def _truth(tech):
    f = REPO / "sample_data" / tech / "truth.json"
    if not f.is_file():
        pytest.skip(f"no {tech} sample data")
    return json.loads(f.read_text())


def test_ftir_eels_xps_afm_claims_reproduce_truth(study):
    """Every claim of the study gets a verdict from sample_data, with the value the generator put in."""
    claims = _claims(study["out"])
    for cid in ("ftir_bh_redshift", "eels_pistar_shift", "xps_interphase_species", "xps_interphase_thickness",
                "afm_modulus_ratio", "afm_protrusions"):
        assert claims[cid]["verdict"] == "supported", (cid, claims[cid].get("reason"))
    ftir = claims["ftir_bh_redshift"]
    assert ftir["value"] == pytest.approx(_truth("ftir")["bh_stretch_shift_cm1"], abs=max(0.5, 4 * ftir["stderr"]))
    eels = _truth("eels")["samples"]
    shift = eels["LiBH4-70LiNBH"]["pi_star_energy_eV"] - eels["LiBH4"]["pi_star_energy_eV"]
    assert claims["eels_pistar_shift"]["value"] == pytest.approx(shift, abs=0.05)
    afm = claims["afm_modulus_ratio"]
    assert afm["value"] == pytest.approx(_truth("afm")["modulus_ratio"], rel=0.01)
    xps = _truth("xps")["Li_vs_LiBH4-70LiNBH.vms"]
    t = next((xps[k] for k in ("interphase_thickness_nm", "thickness_nm") if k in xps), None)
    if isinstance(t, dict):
        t = max(v for v in t.values() if v is not None)
    if t is not None:
        assert claims["xps_interphase_thickness"]["value"] == pytest.approx(float(t), rel=0.1)
