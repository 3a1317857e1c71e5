"""JCAMP-DX NMR reader: XYDATA (Hz / ppm), NTUPLES, PEAK TABLE, sample data, non-NMR JCAMP rejection."""
from __future__ import annotations

import json

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.io.jcampdx import JcampNMRReader
from specproc.testing.nmr_synth import spectrum_model, write_jcamp_spectrum

COMPS = [dict(name="A", center_ppm=-44.3, fwhm_ppm=1.6, area_fraction=0.7, fraction_lorentz=0.5),
         dict(name="B", center_ppm=23.6, fwhm_ppm=8.0, area_fraction=0.3, fraction_lorentz=0.3)]

NTUPLES = """##TITLE= ntuples test
##JCAMP-DX= 5.00
##DATA TYPE= NMR SPECTRUM
##DATA CLASS= NTUPLES
##.OBSERVE FREQUENCY= 100.0
##.OBSERVE NUCLEUS= ^13C
##NTUPLES= NMR SPECTRUM
##VAR_NAME= FREQUENCY, SPECTRUM/REAL, SPECTRUM/IMAG, PAGE NUMBER
##SYMBOL= X, R, I, N
##VAR_TYPE= INDEPENDENT, DEPENDENT, DEPENDENT, PAGE
##VAR_FORM= AFFN, ASDF, ASDF, AFFN
##VAR_DIM= 8, 8, 8, 2
##UNITS= HZ, ARBITRARY UNITS, ARBITRARY UNITS,
##FIRST= 1000, 0, 0, 1
##LAST= -400, 0, 0, 2
##FACTOR= 1, 1, 1, 1
##PAGE= N=1
##DATA TABLE= (X++(R..R)), XYDATA
1000 1 2 3 10 3 2 1 0
##PAGE= N=2
##DATA TABLE= (X++(I..I)), XYDATA
1000 0 0 0 0 0 0 0 0
##END NTUPLES= NMR SPECTRUM
##END=
"""

PEAKS = """##TITLE= peak list
##JCAMP-DX= 4.24
##DATA TYPE= NMR PEAK TABLE
##.OBSERVE FREQUENCY= 100.0
##.OBSERVE NUCLEUS= ^13C
##XUNITS= PPM
##YUNITS= ARBITRARY UNITS
##NPOINTS= 3
##PEAK TABLE= (XY..XY)
10.0, 5.0; 20.0, 10.0; 30.0, 2.0
##END=
"""

IR = """##TITLE= polystyrene
##JCAMP-DX= 4.24
##DATA TYPE= INFRARED SPECTRUM
##XUNITS= 1/CM
##YUNITS= TRANSMITTANCE
##FIRSTX= 4000
##LASTX= 3997
##NPOINTS= 4
##XYDATA= (X++(Y..Y))
4000 0.9 0.8 0.7 0.9
##END=
"""


def _axis(sf, n=2048, carrier=-10.0, sw=100_000.0):
    half = sw / 2 / sf
    return carrier + np.linspace(half, -half, n, endpoint=False)


@pytest.mark.parametrize("units", ["HZ", "PPM"])
def test_xydata_round_trip(tmp_path, units):
    ppm = _axis(128.38)
    y = spectrum_model(ppm, COMPS, sf_mhz=128.38)
    f = tmp_path / f"s_{units}.jdx"
    write_jcamp_spectrum(f, ppm, y, title="LiBH4 test", nucleus="11B", sf_mhz=128.38, x_units=units,
                         extra={"$MASR": 12500})
    r = JcampNMRReader()
    assert r.guess_can_open(f)
    m = sp.read(f)
    assert m.attrs["provenance"]["reader"] == "jcampdx-nmr"
    assert m.attrs["original_metadata"]["parser"] == "nmrglue.jcampdx"
    assert m.dims == ("shift",) and m.coords["shift"].attrs["units"] == "ppm"
    assert m.attrs["signal_type"] == "spectrum" and m.attrs["nucleus"] == "11B"
    assert m.attrs["sample"] == "LiBH4 test"
    a = m.attrs["acquisition"]
    assert a["sf_mhz"] == pytest.approx(128.38) and a["mas_rate_hz"] == 12500
    np.testing.assert_allclose(m.coords["shift"].values, ppm, atol=1e-5)
    np.testing.assert_allclose(m.values, y, atol=1e-7 * y.max())
    x = m.coords["shift"].values
    assert x[np.argmax(m.values)] == pytest.approx(-44.3, abs=abs(x[1] - x[0]))
    json.dumps(m.attrs)


def test_hz_axis_with_shift_reference(tmp_path):
    """Hz relative to the carrier + .SHIFT REFERENCE (point 1 = 300 ppm) -> absolute ppm."""
    f = tmp_path / "ref.jdx"
    ppm = np.linspace(300, 100, 201)
    write_jcamp_spectrum(f, ppm, np.exp(-((ppm - 200) / 5) ** 2), title="t", nucleus="13C", sf_mhz=100.0,
                         x_units="HZ")
    text = f.read_text()
    # shift the Hz axis by 5 kHz (an axis relative to some other zero): the reference point fixes it
    text = text.replace("##FIRSTX= 30000.00000000", "##FIRSTX= 35000.00000000")
    text = text.replace("##LASTX= 10000.00000000", "##LASTX= 15000.00000000")
    f.write_text(text)
    m = sp.read(f)
    x = m.coords["shift"].values
    assert x[0] == pytest.approx(300) and x[-1] == pytest.approx(100)
    assert x[np.argmax(m.values)] == pytest.approx(200, abs=1e-6)


def test_ntuples_real_part(tmp_path):
    f = tmp_path / "nt.dx"
    f.write_text(NTUPLES)
    assert JcampNMRReader().guess_can_open(f)
    m = sp.read(f)
    assert m.shape == (8,) and m.attrs["nucleus"] == "13C"
    np.testing.assert_allclose(m.values, [1, 2, 3, 10, 3, 2, 1, 0])
    np.testing.assert_allclose(m.coords["shift"].values, np.linspace(10, -4, 8))
    assert m.coords["shift"].values[np.argmax(m.values)] == pytest.approx(4.0)


def test_peak_table_through_jcamp_package(tmp_path):
    f = tmp_path / "pk.jdx"
    f.write_text(PEAKS)
    assert JcampNMRReader().guess_can_open(f)
    m = sp.read(f)
    assert m.attrs["original_metadata"]["parser"] == "jcamp"
    np.testing.assert_allclose(m.coords["shift"].values, [30, 20, 10])
    np.testing.assert_allclose(m.values, [2, 10, 5])


def test_ir_jcamp_not_claimed(tmp_path, realdata):
    f = tmp_path / "ir.jdx"
    f.write_text(IR)
    r = JcampNMRReader()
    assert not r.guess_can_open(f)
    with pytest.raises(ReaderError, match="INFRARED"):
        sp.read(f, reader="jcampdx-nmr")
    for p in list((realdata / "ftir").glob("*.jdx")) + [realdata / "nmr/dnp_29Si_CP_satrec/100/pdata/1/t1t2.dx"]:
        assert not r.guess_can_open(p), p


def test_hz_without_observe_frequency(tmp_path):
    f = tmp_path / "noobs.jdx"
    ppm = np.linspace(10, 0, 11)
    write_jcamp_spectrum(f, ppm, np.arange(11.0), title="t", nucleus="1H", sf_mhz=400.0, x_units="HZ")
    f.write_text(f.read_text().replace("##.OBSERVE FREQUENCY= 400.00000000\n", ""))
    with pytest.raises(ReaderError, match="OBSERVE FREQUENCY") as e:
        sp.read(f, reader="jcampdx-nmr")
    assert "noobs.jdx" in str(e.value)


def test_empty_and_dataless(tmp_path):
    f = tmp_path / "empty.jdx"
    f.write_text("")
    with pytest.raises(ReaderError, match="empty"):
        sp.read(f, reader="jcampdx-nmr")
    f.write_text("##TITLE= x\n##DATA TYPE= NMR SPECTRUM\n##.OBSERVE FREQUENCY= 100\n##END=\n")
    with pytest.raises(ReaderError, match="no XYDATA"):
        sp.read(f, reader="jcampdx-nmr")


def test_sample_data_jcamp(repo_root):
    tf = repo_root / "sample_data" / "nmr" / "truth.json"
    if not tf.is_file():
        pytest.skip("sample_data/nmr not generated")
    truth = {k: t for k, t in json.loads(tf.read_text()).items() if t["format"] == "jcampdx"}
    assert truth
    for key, t in truth.items():
        m = sp.read(repo_root / "sample_data" / "nmr" / t["path"])
        assert m.attrs["nucleus"] == t["nucleus"] and m.attrs["sample"] == t["sample"]
        assert m.attrs["acquisition"]["sf_mhz"] == pytest.approx(t["sf_mhz"])
        assert m.attrs["acquisition"]["mas_rate_hz"] == pytest.approx(t["mas_rate_hz"])
        assert m.shape == (t["npoints"],)
        x = m.coords["shift"].values
        # the tallest point sits on one of the two tallest sites by area/FWHM (a quadrupolar site's
        # horned line is taller than that, and its maximum is at max_ppm, not at its isotropic shift)
        tall = sorted(t["components"], key=lambda c: -c["area_fraction"] / c["fwhm_ppm"])[:2]
        top_ppm = x[np.argmax(m.values)]
        assert any(abs(top_ppm - c.get("max_ppm", c["center_ppm"])) < c["fwhm_ppm"] / 2 for c in tall), (key, top_ppm)


@pytest.mark.parametrize("label,value,match", [("LASTX", None, "zero width"), ("NPOINTS", "3", "NPOINTS= 3")])
def test_header_contradicting_the_data_is_refused(tmp_path, repo_root, label, value, match):
    """FIRSTX = LASTX and NPOINTS = 3 against 4,096 values are ReaderErrors, never a spectrum."""
    import re

    src = repo_root / "sample_data" / "nmr" / "jcamp" / "LiBH4_11B.jdx"
    if not src.is_file():
        pytest.skip("sample_data/nmr not generated")
    text = src.read_text(encoding="latin-1")
    if value is None:  # LASTX = FIRSTX
        value = re.search(r"^##FIRSTX=\s*(\S+)", text, re.M).group(1)
    f = tmp_path / "bad.jdx"
    f.write_text(re.sub(rf"^##{label}=.*$", f"##{label}= {value}", text, flags=re.M), encoding="latin-1")
    with pytest.raises(ReaderError, match=match) as e:
        sp.read(f)
    assert "bad.jdx" in str(e.value)
