"""2θ text reader: real LaB6 .xye (MANIFEST facts), headers, sniffing, bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.io.xy import XYReader

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata" / "xrd"


def test_lab6_xye_manifest_facts():
    p = REAL / "LaB6_d500_si_psd.xye"
    if not p.exists():
        pytest.skip("real data not available")
    assert XYReader().guess_can_open(p)
    m = sp.read(p)
    tt = m.coords["two_theta"].values
    assert m.size == 17381 and tt[0] == pytest.approx(4.57208) and tt[-1] == pytest.approx(150.5783)
    assert m.attrs["acquisition"]["step_deg"] == pytest.approx(0.0084, abs=1e-4)
    assert tt[np.argmax(m.values)] == pytest.approx(30.3962) and m.values.max() == pytest.approx(14379.37019)
    assert "intensity_sigma" in m.coords and m.coords["intensity_sigma"].values[0] == pytest.approx(548.589)
    assert m.attrs["acquisition"]["wavelength_source"] == "default"


def test_header_and_wavelength(tmp_path):
    p = tmp_path / "a.xy"
    p.write_text("# my sample\n# wavelength = 1.78897 A\n2theta intensity\n" +
                 "".join(f"{10 + 0.1 * i:.2f} {100 + i}\n" for i in range(50)))
    m = sp.read(p)
    assert m.size == 50 and "intensity_sigma" not in m.coords
    assert m.attrs["acquisition"]["wavelength_nm"] == pytest.approx(0.178897)
    assert m.attrs["acquisition"]["wavelength_source"] == "file"


def test_csv_sniffed_by_2theta_header(tmp_path):
    p = tmp_path / "pattern.csv"
    p.write_text("2Theta,Intensity\n" + "".join(f"{10 + 0.1 * i:.2f},{100 + i}\n" for i in range(50)))
    assert XYReader().guess_can_open(p)
    q = tmp_path / "other.csv"
    q.write_text("wavenumber,absorbance\n" + "".join(f"{400 + i},{0.1 * i}\n" for i in range(50)))
    assert not XYReader().guess_can_open(q)


def test_decreasing_axis_sorted(tmp_path):
    p = tmp_path / "d.xy"
    p.write_text("".join(f"{50 - 0.1 * i:.2f} {i}\n" for i in range(50)))
    m = sp.read(p)
    assert np.all(np.diff(m.coords["two_theta"].values) > 0) and m.values[0] == 49


def test_non_monotonic_rejected(tmp_path):
    p = tmp_path / "bad.xy"
    p.write_text("10 1\n11 2\n10.5 3\n12 4\n")
    with pytest.raises(ReaderError, match="bad.xy.*not monotonic"):
        sp.read(p)


def test_empty_and_text_only(tmp_path):
    p = tmp_path / "e.xy"
    p.write_text("# only a header\n")
    with pytest.raises(ReaderError, match="no numeric data"):
        sp.read(p, reader="xrd-text")
    q = tmp_path / "z.xy"
    q.write_bytes(b"")
    with pytest.raises(ReaderError, match="empty"):
        sp.read(q, reader="xrd-text")


def test_wrong_columns(tmp_path):
    p = tmp_path / "c.xy"
    p.write_text("".join(f"{10 + i} 1 2 3\n" for i in range(10)))
    with pytest.raises(ReaderError, match="4 columns"):
        sp.read(p, reader="xrd-text")
