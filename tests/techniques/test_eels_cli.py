"""``specproc eels``: JSON contract for spectra and spectrum images, failures, report; lazy imports."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from specproc.cli import main

DATA = Path(__file__).resolve().parents[2] / "sample_data" / "eels"


def run(capsys, *argv):
    code = main(["eels", *map(str, argv)])
    return code, capsys.readouterr()


def test_json_spectrum_and_map(capsys, tmp_path):
    truth = json.loads((DATA / "truth.json").read_text())
    report = tmp_path / "eels.html"
    code, out = run(capsys, DATA / "LiBH4_BK.msa", DATA / "SI_LiBH4-70LiNBH_16x16.hspy", "--json",
                    "--report", report)
    assert code == 0, out.err
    entries = json.loads(out.out)
    one, si = entries
    assert set(one) >= {"file", "sample", "edge", "onset_eV", "peaks", "warnings"}
    assert one["edge"] == "B K" and one["sample"] == "LiBH4"
    pi = one["peaks"][0]
    assert pi["name"] == "pi*" and set(pi) >= {"energy_eV", "energy_eV_stderr", "fwhm_eV"}
    assert pi["energy_eV"] == pytest.approx(truth["samples"]["LiBH4"]["pi_star_energy_eV"], abs=0.03)
    assert 0 < pi["energy_eV_stderr"] < 0.05
    assert one["onset_eV"] < pi["energy_eV"]
    mp = si["map"]
    assert mp["shape"] == [16, 16] and mp["pi_star_energy_eV"]["n_valid"] == 256
    assert mp["pi_star_energy_eV"]["median"] == pytest.approx(
        truth["spectrum_image"]["pi_star_energy_eV_median"], abs=0.05)
    html = report.read_text()
    assert "π* per spectrum / spectrum image" in html
    assert html.count('"type":"heatmap"') >= 4 and '"type":"histogram"' in html


def test_options_and_failures(capsys, tmp_path):
    bad = tmp_path / "bad.msa"
    bad.write_text("#FORMAT : EMSA/MAS Spectral Data File\n#SPECTRUM : x\nnot numbers\n")
    code, out = run(capsys, DATA / "LiBH4-70LiNBH_BK_drift.msa", bad, "--lowloss",
                    DATA / "LiBH4-70LiNBH_lowloss.msa", "--background-window", "160:182", "--json")
    assert code == 1
    good, fail = json.loads(out.out)
    assert good["energy_calibration"]["method"] == "zero-loss alignment"
    assert good["peaks"][0]["energy_eV"] == pytest.approx(187.9, abs=0.05)
    assert fail["file"].endswith("bad.msa") and fail["error"]
    code, out = run(capsys, DATA / "LiBH4_BK.msa", "--edge", "Q K")
    assert code == 2 and "edge" in out.err
    with pytest.raises(SystemExit):
        main(["eels", str(DATA / "LiBH4_BK.msa"), "--background-window", "180"])
    code, out = run(capsys, DATA / "LiBH4_BK.msa", "--energy-offset", "0.5")
    assert code == 0 and "189.09" in out.out  # text table: π* moved by the stated offset


def test_import_specproc_does_not_import_hyperspy():
    code = ("import sys, specproc, specproc.techniques.eels, specproc.io.gatan, specproc.io.msa, specproc.io.hspy;"
            "bad=[m for m in ('hyperspy','exspy','rsciio','lmfit') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
