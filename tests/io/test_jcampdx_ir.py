"""JCAMP-DX IR reader: MANIFEST facts of real files (PAC %T, AFFN fraction with a DOS EOF byte),
compressed (ASDF DIF) = plain, XYPOINTS, micrometres, %T vs fraction from header + data, bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.io.jcampdx_ir import JcampIRReader

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gen(ftir_generator):
    return ftir_generator


def _real(realdata, name):
    p = realdata / "ftir" / name
    if not p.is_file():
        pytest.skip(f"{name} not available")
    return p


def test_pacdec1_percent_transmittance(realdata):
    p = _real(realdata, "pacdec1.jdx")
    assert JcampIRReader().guess_can_open(p)
    m = sp.read(p)
    acq = m.attrs["acquisition"]
    assert m.attrs["provenance"]["reader"] == "jcampdx-ir"
    assert acq["y_kind"] == "transmittance" and acq["y_scale"] == "percent"      # 86.31 ... 101.89 %T
    assert m.sizes["wavenumber"] == 3301 and acq["first_x"] == 4000.0 and acq["last_x"] == 700.0
    assert acq["resolution_cm1"] == 4.0 and m.attrs["instrument"] == "PERKIN-ELMER 1800"
    x, y = m.wavenumber.values, m.values
    assert np.all(np.diff(x) > 0) and x[0] == 700.0 and x[-1] == 4000.0
    assert x[np.argmin(y)] == 1189.0 and y.min() == pytest.approx(0.8631) and y.max() == pytest.approx(1.0189)
    near = x[y <= y.min() + 0.01]
    assert near.min() >= 1184 and near.max() <= 1194


def test_xyinc1_fraction_with_dos_eof(realdata):
    p = _real(realdata, "xyinc1.jdx")
    assert p.read_bytes()[-1:] == b"\x1a"        # the reader copes without touching the file
    m = sp.read(p)
    acq = m.attrs["acquisition"]
    assert acq["y_kind"] == "transmittance" and acq["y_scale"] == "fraction"      # max 0.7945
    assert m.sizes["wavenumber"] == 3601 and m.attrs["sample"].startswith("Indene")
    x, y = m.wavenumber.values, m.values
    assert x[0] == 400.0 and x[-1] == 4000.0 and np.allclose(np.diff(x), 1.0)
    assert x[np.argmin(y)] == 764.0 and y.min() == pytest.approx(-0.0023) and y.max() == pytest.approx(0.7945)
    near = x[y <= y.min() + 0.01]
    assert near.size == 14 and near.min() == 717.0 and near.max() == 771.0


def test_compressed_equals_plain(gen, tmp_path):
    rng = np.random.default_rng(5)
    x = np.linspace(400, 4000, 1201)
    y = 0.3 + 0.2 * np.sin(x / 90.0) + rng.normal(0, 0.01, x.size)
    gen.write_jcamp(tmp_path / "plain.jdx", x, y, "t", compress=False)
    gen.write_jcamp(tmp_path / "dif.jdx", x, y, "t", compress=True)
    assert "A" <= (tmp_path / "dif.jdx").read_text().splitlines()[17][9] <= "r"    # ASDF characters
    a, b = sp.read(tmp_path / "plain.jdx"), sp.read(tmp_path / "dif.jdx")
    assert np.array_equal(a.values, b.values) and np.allclose(a.wavenumber, b.wavenumber)
    assert np.allclose(a.values, y, atol=1e-5)
    assert not b.attrs["acquisition"]["reader_notes"]


def test_sample_data_compressed_file(repo_root):
    m = sp.read(repo_root / "sample_data" / "ftir" / "LiNBH.jdx")
    assert m.sizes["wavenumber"] == 3735 and m.attrs["acquisition"]["y_kind"] == "absorbance"


XYPOINTS = """##TITLE= xypoints micrometres
##JCAMP-DX= 4.24
##DATA TYPE= INFRARED SPECTRUM
##XUNITS= MICROMETERS
##YUNITS= {yunits}
##XFACTOR= 1.0
##YFACTOR= 1.0
##NPOINTS= {n}
##XYPOINTS= (XY..XY)
{rows}
##END=
"""


def _xypoints(path, wl, y, yunits="ABSORBANCE", n=None):
    rows = "\n".join(f"{a:.6f}, {b:.6f}" for a, b in zip(wl, y))
    path.write_text(XYPOINTS.format(yunits=yunits, n=n if n is not None else len(wl), rows=rows))
    return path


def test_xypoints_micrometres(tmp_path):
    wl = np.linspace(2.5, 10.0, 50)                   # micrometres, increasing = wavenumber decreasing
    a = np.exp(-((1e4 / wl - 2300) / 40) ** 2)
    m = sp.read(_xypoints(tmp_path / "p.jdx", wl, a))
    x = m.wavenumber.values
    assert np.all(np.diff(x) > 0) and x[0] == pytest.approx(1000.0) and x[-1] == pytest.approx(4000.0)
    assert np.allclose(m.values, a[::-1], atol=1e-6)


def test_percent_or_fraction_from_data(tmp_path):
    wl = np.linspace(2.5, 10.0, 30)
    t = 0.2 + 0.5 * np.linspace(0, 1, 30)
    frac = sp.read(_xypoints(tmp_path / "f.jdx", wl, t, "TRANSMITTANCE"))
    pct = sp.read(_xypoints(tmp_path / "p.jdx", wl, 100 * t, "TRANSMITTANCE"))
    assert frac.attrs["acquisition"]["y_scale"] == "fraction" and pct.attrs["acquisition"]["y_scale"] == "percent"
    assert np.allclose(frac.values, pct.values)
    # an absorbance header on %T data is refused, not read as absorbance 20..70
    with pytest.raises(ReaderError, match="looks like %T"):
        sp.read(_xypoints(tmp_path / "bad.jdx", wl, 100 * t, "ABSORBANCE"))
    ok = sp.read(tmp_path / "bad.jdx", reader="jcampdx-ir", y_kind="transmittance")
    assert np.allclose(ok.values, frac.values)


def test_bad_input(tmp_path, gen):
    wl = np.linspace(2.5, 10.0, 30)
    with pytest.raises(ReaderError, match="NPOINTS=40"):
        sp.read(_xypoints(tmp_path / "n.jdx", wl, np.ones(30), n=40), reader="jcampdx-ir")
    x = np.linspace(400, 4000, 301)
    gen.write_jcamp(tmp_path / "w.jdx", x, np.ones(301), "t")
    text = (tmp_path / "w.jdx").read_text().replace("##NPOINTS= 301", "##NPOINTS= 350")
    (tmp_path / "w.jdx").write_text(text)
    with pytest.raises(ReaderError, match="NPOINTS"):
        sp.read(tmp_path / "w.jdx")
    (tmp_path / "e.jdx").write_text("")
    with pytest.raises(ReaderError, match="empty"):
        sp.read(tmp_path / "e.jdx", reader="jcampdx-ir")
    (tmp_path / "nan.jdx").write_text(XYPOINTS.format(yunits="ABSORBANCE", n=3, rows="2.5, 0.1\n3.0, nan\n3.5, 0.2"))
    with pytest.raises(ReaderError):
        sp.read(tmp_path / "nan.jdx", reader="jcampdx-ir")
    trunc = (tmp_path / "w.jdx").read_text().split("##END=")[0]
    (tmp_path / "t.jdx").write_text(trunc)
    with pytest.raises(ReaderError, match="END"):
        sp.read(tmp_path / "t.jdx", reader="jcampdx-ir")
    nmr = tmp_path / "nmr.jdx"
    nmr.write_text("##TITLE= x\n##DATA TYPE= NMR SPECTRUM\n##XYDATA= (X++(Y..Y))\n1 2 3\n##END=\n")
    assert not JcampIRReader().guess_can_open(nmr)
    with pytest.raises(ReaderError, match="not an infrared"):
        JcampIRReader().read(nmr)
