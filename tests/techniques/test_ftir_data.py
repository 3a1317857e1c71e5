"""FTIR on files: the study's sample data against truth.json (and the pipeline claim), the real
files of ../shared/realdata/ftir (saturation, %T conversion), the CLI JSON contract."""
from __future__ import annotations

import json

import numpy as np
import pytest

import specproc as sp

BANDS = {"BH_stretch": 2300, "BH_stretch_low": 2225}


@pytest.fixture(scope="module")
def truth(repo_root):
    return json.loads((repo_root / "sample_data" / "ftir" / "truth.json").read_text())


@pytest.fixture(scope="module")
def fits(repo_root):
    d = repo_root / "sample_data" / "ftir"
    names = ["LiBH4", "LiBH4-70LiNBH"]
    return dict(zip(names, sp.ftir.fit_bands([sp.read(d / f"{n}.jdx") for n in names], BANDS, region=(2050, 2550))))


def test_sample_data_bands_and_shift(fits, truth):
    for name, r in fits.items():
        tb = truth["samples"][name]["bands"]
        for band in BANDS:
            q = r.quantities[f"{band}.center_cm1"]
            assert abs(q.value - tb[band]["center_cm1"]) < max(0.5, 3 * q.stderr), (name, band, q)
            assert r.quantities[f"{band}.fwhm_cm1"].value == pytest.approx(tb[band]["fwhm_cm1"], rel=0.05)
        assert any("CO2 2337/2361" in w for w in r.warnings)
    c = sp.ftir.compare(fits["LiBH4"], fits["LiBH4-70LiNBH"], "BH_stretch")
    assert c.value == pytest.approx(truth["bh_stretch_shift_cm1"], abs=max(0.7, 3 * c.stderr))
    assert c.value < 0 and abs(c.value / c.stderr) > 10          # the red shift is far outside the errors


def test_csv_transmittance_gives_the_same_bands(repo_root, fits):
    r = sp.ftir.fit_bands(sp.read(repo_root / "sample_data" / "ftir" / "csv" / "LiBH4.csv"), BANDS,
                          region=(2050, 2550))
    assert r.meta["y_kind"] == "transmittance"
    a, b = r.quantities["BH_stretch.center_cm1"], fits["LiBH4"].quantities["BH_stretch.center_cm1"]
    assert a.value == pytest.approx(b.value, abs=2 * b.stderr)


def test_dehydrogenated_sample_has_no_bh_stretch(repo_root):
    r = sp.ftir.fit_bands(sp.read(repo_root / "sample_data" / "ftir" / "LiNBH.jdx"), {"BH_stretch": 2300},
                          region=(2050, 2550))
    assert any("not detected" in w for w in r.warnings)
    assert r.quantities["BH_stretch.center_cm1"].stderr is None


def test_real_opus_saturated_co2(realdata):
    p = realdata / "ftir" / "test.0000"
    if not p.is_file():
        pytest.skip("real OPUS file not available")
    r = sp.ftir.fit_bands(sp.read(p), region=(2800, 3100))
    assert any("saturated band at 2348.9-2383.6" in w for w in r.warnings)     # AB clipped at 6.0
    assert r.meta["saturated_cm1"]
    assert all(2800 <= v <= 3100 for v in r.table["center_cm1"])


def test_real_jcamp_transmittance_strongest_band(realdata):
    p = realdata / "ftir" / "pacdec1.jdx"
    if not p.is_file():
        pytest.skip("pacdec1.jdx not available")
    r = sp.ftir.fit_bands(sp.read(p), region=(1100, 1280))
    assert r.meta["y_kind"] == "transmittance"
    top = r.table.sort_values("height").iloc[-1]
    # MANIFEST: strongest band (min T) at 1189.0 cm-1, the 1 %T window spans 1184-1194
    assert 1184 <= top["center_cm1"] <= 1194 and 1184 <= top["max_cm1"] <= 1194
    x = realdata / "ftir" / "xyinc1.jdx"
    if x.is_file():
        rx = sp.ftir.fit_bands(sp.read(x), region=(650, 850))
        assert any("transmittance <= 0" in w for w in rx.warnings)        # min T = -0.0023 near 764


def test_cli_json_contract(repo_root, capsys):
    from specproc.cli import main

    d = repo_root / "sample_data" / "ftir"
    rc = main(["ftir", str(d / "LiBH4.jdx"), str(d / "csv" / "LiBH4.csv"), str(d / "missing.jdx"),
               "--region", "2050:2550", "--peaks", "2300,2225", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and len(out) == 3
    a, b, bad = out
    assert a["y_kind"] == "absorbance" and b["y_kind"] == "transmittance" and "error" in bad
    for e in (a, b):
        assert {"file", "sample", "y_kind", "bands", "warnings"} <= set(e)
        assert len(e["bands"]) == 2
        for band in e["bands"]:
            assert {"name", "center_cm1", "center_cm1_stderr", "fwhm_cm1", "area", "area_stderr"} <= set(band)
    assert abs(a["bands"][0]["center_cm1"] - 2299) < 1
    with pytest.raises(SystemExit) as e:        # usage error: refused by the option's own bound
        main(["ftir", str(d / "LiBH4.jdx"), "--n-peaks", "0", "--json"])
    assert e.value.code == 2


def test_cli_report(repo_root, tmp_path, capsys):
    from specproc.cli import main

    d = repo_root / "sample_data" / "ftir"
    out = tmp_path / "r.html"
    rc = main(["ftir", str(d / "LiBH4.jdx"), str(d / "spc" / "LiBH4-70LiNBH.spc"), "--region", "2050:2550",
               "--peaks", "2300,2225", "--compare-baseline", "arpls", "--report", str(out)])
    assert rc == 0 and out.stat().st_size > 10000
    html = out.read_text()
    assert "FTIR: fitted bands" in html and "FTIR: band shifts" in html
    assert "FTIR: baseline comparison" in html and "(baseline arpls)" in html
    assert "FTIR: atmospheric CO2 modelled" in html
