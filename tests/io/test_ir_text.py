"""IR text/CSV reader: header-named columns, %T / fraction / absorbance, micrometres, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.io.ir_text import IRTextReader


def test_sample_csv_percent_transmittance(repo_root):
    p = repo_root / "sample_data" / "ftir" / "csv" / "LiBH4.csv"
    assert IRTextReader().guess_can_open(p)
    m = sp.read(p)
    assert m.attrs["provenance"]["reader"] == "ir-text"
    acq = m.attrs["acquisition"]
    assert acq["y_kind"] == "transmittance" and acq["y_scale"] == "percent" and acq["resolution_cm1"] == 4.0
    assert m.attrs["sample"] == "LiBH4" and 0 < float(m.min()) and float(m.max()) < 1
    jd = sp.read(repo_root / "sample_data" / "ftir" / "LiBH4.jdx")
    assert np.allclose(-np.log10(m.values), jd.values, atol=2e-4)      # same spectrum, other form


@pytest.mark.parametrize("header,scale,kind", [("wavenumber_cm-1,absorbance", None, "absorbance"),
                                              ("Wavenumber (cm-1);Transmittance", "fraction", "transmittance"),
                                              ("cm-1\t%T", "percent", "transmittance")])
def test_headers(tmp_path, header, scale, kind):
    sep = ";" if ";" in header else ("\t" if "\t" in header else ",")
    x = np.linspace(4000, 400, 50)
    y = 0.5 + 0.3 * np.cos(x / 300)
    y = y * 100 if scale == "percent" else y
    p = tmp_path / "s.txt"
    p.write_text(header + "\n" + "\n".join(f"{a}{sep}{b}" for a, b in zip(x, y)) + "\n")
    m = sp.read(p)
    assert m.attrs["acquisition"]["y_kind"] == kind and m.attrs["acquisition"]["y_scale"] == scale
    assert np.all(np.diff(m.wavenumber.values) > 0)
    assert float(m.max()) < 1.0


def test_micrometre_axis(tmp_path):
    wl = np.linspace(2.5, 25, 40)
    p = tmp_path / "um.csv"
    p.write_text("wavelength_um,absorbance\n" + "\n".join(f"{a},{0.1}" for a in wl))
    m = sp.read(p)
    assert float(m.wavenumber.min()) == pytest.approx(400) and float(m.wavenumber.max()) == pytest.approx(4000)


def test_bad_input(tmp_path):
    p = tmp_path / "nan.csv"
    p.write_text("wavenumber,absorbance\n4000,0.1\n3999,nan\n3998,0.2\n3997,0.1\n")
    with pytest.raises(ReaderError, match="NaN"):
        IRTextReader().read(p)
    e = tmp_path / "e.csv"
    e.write_text("")
    with pytest.raises(ReaderError, match="empty"):
        IRTextReader().read(e)
    h = tmp_path / "h.csv"
    h.write_text("wavenumber,absorbance\n")
    with pytest.raises(ReaderError, match="no data rows"):
        IRTextReader().read(h)
    n = tmp_path / "n.csv"
    n.write_text("x,y\n1,2\n")
    assert not IRTextReader().guess_can_open(n)
    with pytest.raises(ReaderError, match="no header"):
        IRTextReader().read(n)
    t = tmp_path / "t.csv"
    t.write_text("wavenumber,absorbance\n4000,0.1\n3999,abc\n3998,0.2\n")
    with pytest.raises(ReaderError):
        IRTextReader().read(t)
    pc = tmp_path / "pc.csv"
    pc.write_text("wavenumber,absorbance\n" + "\n".join(f"{4000 - i},{50 + i}" for i in range(10)))
    with pytest.raises(ReaderError, match="looks like %T"):
        IRTextReader().read(pc)
