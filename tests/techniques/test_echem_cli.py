"""``specproc echem``: the JSON contract of every kind, failures and usage errors; the processor
contract (specproc.testing.contract); the report section."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from specproc.cli import main
from specproc.testing.contract import ProcessorContract

DATA = Path(__file__).resolve().parents[2] / "sample_data" / "echem"
GEO = ["--thickness-cm", "0.1", "--area-cm2", "0.785"]


def run(capsys, *argv):
    """(exit code, output): a usage error found by argparse (a bound of the Params schema checked on the
    command line) exits 2 like one found when the parameters are validated."""
    try:
        code = main(["echem", *map(str, argv)])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr()


def test_json_contract_of_every_kind(capsys, tmp_path):
    report = tmp_path / "echem.html"
    code, out = run(capsys, DATA / "LiBH4-70LiNBH_EIS_30C_nova.txt", DATA / "LiBH4_EIS_Tseries",
                    DATA / "LiBH4-70LiNBH_BV_30C", DATA / "LiBH4-70LiNBH_CCD.mpt", *GEO, "--step-test-c", "110",
                    "--json", "--report", report)
    assert code == 0, out.err
    one, series, pol, cyc = json.loads(out.out)
    assert set(one) >= {"file", "sample", "kind", "temperature_C", "circuit", "parameters", "R_bulk_ohm",
                        "R_bulk_ohm_stderr", "conductivity_S_cm", "conductivity_S_cm_stderr", "kk", "warnings"}
    assert one["kind"] == "eis" and set(one["kk"]) == {"max_residual_pct", "valid"}
    assert {p["name"] for p in one["parameters"]} == {"R0", "R1", "CPE1_Q", "CPE1_n", "CPE2_Q", "CPE2_n"}
    assert all(set(p) == {"name", "value", "stderr"} for p in one["parameters"])
    assert one["conductivity_S_cm"] == pytest.approx(2.2e-4, rel=0.02)
    assert series["kind"] == "eis_series" and len(series["spectra"]) == 20
    assert series["spectra"][0]["temperature_C"] == 30 and series["arrhenius"]["transition"]["present"]
    assert series["arrhenius"]["step_test"]["jump_decades"] > 1.5
    assert pol["kind"] == "polarisation" and pol["transference_number"] > 0.99 and pol["transference_number_stderr"]
    assert cyc["kind"] == "galvanostatic" and cyc["ccd_mA_cm2"] == pytest.approx(7.5) and cyc["short_circuit"]
    assert "rule" in cyc and "first failure" in cyc["rule"]
    html = report.read_text()
    assert "Electrochemistry" in html and "Arrhenius" in html and "Nyquist" in html and "Bode" in html


def test_failures_name_the_file_and_usage_errors_exit_2(capsys, tmp_path):
    bad = tmp_path / "shuffled.csv"
    bad.write_text("freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm\n1000,10,1\n10,11,2\n100,12,3\n1,13,4\n0.1,14,5\n")
    code, out = run(capsys, DATA / "LiBH4-70LiNBH_EIS_30C_nova.txt", bad, DATA / "LiBH4_CCD.csv", *GEO,
                    "--analysis", "eis", "--json")
    assert code == 1
    ok, e1, e2 = json.loads(out.out)
    assert ok["kind"] == "eis"
    assert e1["file"].endswith("shuffled.csv") and "not monotonic" in e1["error"]
    assert e2["file"].endswith("LiBH4_CCD.csv") and "not an impedance spectrum" in e2["error"]
    for args in (["--thickness-cm", "-0.1"], ["--area-cm2", "0"], ["--circuit", "R0-p(R1,"]):
        code, out = run(capsys, DATA / "LiBH4-70LiNBH_EIS_30C_nova.txt", *args)
        assert code == 2, args
        assert out.err.strip(), args


def test_text_output(capsys):
    code, out = run(capsys, DATA / "LiBH4-70LiNBH_EIS_Tseries.mpt", *GEO)
    assert code == 0 and "sigma_S_cm" in out.out and out.out.count("eis_series") >= 20


# ------------------------------------------------------------------------------------ processor contract
class TestAnalyseSpectrum(ProcessorContract):
    processor = "echem.analyse"
    params = {"thickness_cm": 0.1, "area_cm2": 0.785}

    def make_input(self):
        import specproc as sp

        return sp.read(DATA / "LiBH4-70LiNBH_EIS_30C_nova.txt")


class TestAnalyseSeries(ProcessorContract):
    processor = "echem.analyse"
    params = {"thickness_cm": 0.1, "area_cm2": 0.785, "step_test_C": 110}

    def make_input(self):
        import specproc as sp

        return sp.read(DATA / "LiNBH_EIS_Tseries")


class TestAnalysePolarisation(ProcessorContract):
    processor = "echem.analyse"
    params = {"analysis": "polarisation"}

    def make_input(self):
        import specproc as sp

        return sp.read(DATA / "LiBH4-70LiNBH_BV_60C")


class TestAnalyseCycling(ProcessorContract):
    processor = "echem.analyse"
    params = {"area_cm2": 0.785}

    def make_input(self):
        import specproc as sp

        return sp.read(DATA / "LiBH4_CCD.csv")


def test_report_section_tables():
    import specproc as sp
    from specproc.techniques.echem import report_section

    rs = [sp.echem.analyse(sp.read(DATA / "LiBH4-70LiNBH_EIS_Tseries.mpt"), thickness_cm=0.1, area_cm2=0.785,
                           step_test_C=110),
          sp.echem.analyse(sp.read(DATA / "LiBH4-70LiNBH_cycling_4mAcm2.mpt"), area_cm2=0.785)]
    sec = report_section(rs)
    captions = [c for c, _ in sec.tables]
    assert any(c.startswith("Impedance") for c in captions) and any(c.startswith("Arrhenius") for c in captions)
    assert any(c.startswith("Galvanostatic") for c in captions)
    kinds = [p["title"].split(" — ")[0] for p in sec.plots]
    assert {"Arrhenius", "Galvanostatic cycling", "Overpotential per half-cycle"} <= set(kinds)
