"""Varian/Agilent reader: the real 87Rb saturation-recovery array (MANIFEST facts) and bad input."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.io.varian import VarianReader

REL = "nmr/varian_87Rb_satrec2D.fid"


def test_real_varian_facts(realdata):
    m = sp.read(realdata / REL)
    a = m.attrs["acquisition"]
    assert m.attrs["provenance"]["reader"] == "varian"
    assert m.attrs["nucleus"] == "87Rb" and m.attrs["signal_type"] == "fid"
    assert a["sfo1_mhz"] == pytest.approx(196.3444528, abs=1e-9)
    assert a["sf_mhz"] == pytest.approx(196.318637242, abs=1e-9)
    assert a["sw_hz"] == pytest.approx(192307.692308)
    assert a["td"] == 3846 and a["ns"] == 4 and a["pulprog"] == "relax"
    assert a["o1_hz"] == pytest.approx(35543.4)
    assert a["carrier_ppm"] == pytest.approx(131.498, abs=1e-3)
    assert m.dims == ("row", "time") and m.shape == (12, 1923)
    np.testing.assert_allclose(m.coords["row"].values,
                               [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5])
    assert m.coords["row"].attrs["units"] == "s"
    assert m.coords["time"].values[1] == pytest.approx(1 / 192307.692308)
    assert m.attrs["date"].startswith("2015-05-28")
    assert m.attrs["original_metadata"]["procpar"]["array"] == ["tau_recovery"]
    json.dumps(m.attrs)


def test_real_varian_tallest_peak(realdata):
    """MANIFEST recipe: last FID, zero-fill to 8192, fftshift(fft), magnitude, index 0 = -sw/2."""
    m = sp.read(realdata / REL)
    a = m.attrs["acquisition"]
    n = 8192
    spec = np.abs(np.fft.fftshift(np.fft.fft(m.values[-1], n)))
    f = np.linspace(-a["sw_hz"] / 2, a["sw_hz"] / 2, n, endpoint=False)
    ppm = ((a["sfo1_mhz"] - a["sf_mhz"]) * 1e6 + f) / a["sf_mhz"]
    assert ppm[np.argmax(spec)] == pytest.approx(131.618, abs=0.3)


def test_guess_and_fid_file_path(realdata):
    r = VarianReader()
    assert r.guess_can_open(realdata / REL) and r.guess_can_open(realdata / REL / "fid")
    assert not r.guess_can_open(realdata / REL / "procpar")
    assert sp.read(realdata / REL / "fid").shape == (12, 1923)


@pytest.fixture
def copy_fid(realdata, tmp_path):
    d = tmp_path / "x.fid"
    shutil.copytree(realdata / REL, d)
    for f in d.iterdir():
        f.chmod(0o644)
    return d


def test_truncated_fid(copy_fid):
    f = copy_fid / "fid"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ReaderError, match="truncated") as e:
        sp.read(copy_fid)
    assert "x.fid" in str(e.value)


def test_missing_procpar(copy_fid):
    (copy_fid / "procpar").unlink()
    with pytest.raises(ReaderError, match="procpar"):
        VarianReader().read(copy_fid)


@pytest.mark.parametrize("key,value,match", [("sfrq", "0", "SFO1"), ("sw", "-5", "spectral width")])
def test_absurd_procpar(copy_fid, key, value, match):
    import re

    pp = copy_fid / "procpar"
    text = pp.read_text(encoding="latin-1")
    # procpar: "name ...attributes...\n1 value\n0\n"
    text, n = re.subn(rf"(^{key} [^\n]*\n1 )[^\n]*", rf"\g<1>{value}", text, count=1, flags=re.M)
    assert n == 1
    pp.write_text(text, encoding="latin-1")
    with pytest.raises(ReaderError, match=match) as e:
        sp.read(copy_fid)
    assert "procpar" in str(e.value)


def test_missing_folder(tmp_path):
    with pytest.raises(ReaderError, match="not found"):
        sp.read(tmp_path / "none.fid", reader="varian")


def test_latin1_procpar_is_readable(tmp_path, realdata):
    """A procpar with a Latin-1 value (``samplename "José"``) reads; the data are unchanged."""
    import shutil

    src = realdata / "nmr" / "varian_87Rb_satrec2D.fid"
    d = tmp_path / "latin.fid"
    shutil.copytree(src, d)
    raw = (d / "procpar").read_bytes()
    i = raw.index(b"samplename ")
    j = raw.index(b"\n", i)
    k = raw.index(b"\n", j + 1)
    (d / "procpar").write_bytes(raw[: j + 1] + '1 "José"'.encode("latin-1") + raw[k:])
    m = sp.read(d)
    assert m.attrs["original_metadata"]["procpar"]["samplename"] == ["José"]
    np.testing.assert_array_equal(m.values, sp.read(src).values)
