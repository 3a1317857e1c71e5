"""Two-column NMR text reader: ppm / Hz headers, separators, comments, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.io.text import NMRTextReader
from specproc.testing.nmr_synth import spectrum_model, write_csv_spectrum

COMPS = [dict(name="Li", center_ppm=-0.9, fwhm_ppm=1.2, area_fraction=1.0, fraction_lorentz=0.5)]


def _spec():
    ppm = np.linspace(50, -50, 1001)
    return ppm, spectrum_model(ppm, COMPS, sf_mhz=155.51)


@pytest.mark.parametrize("units", ["ppm", "hz"])
def test_csv_round_trip(tmp_path, units):
    ppm, y = _spec()
    f = tmp_path / f"Li_{units}.csv"
    write_csv_spectrum(f, ppm, y, nucleus="7Li", sf_mhz=155.51, sample="LiBH4", x_units=units)
    assert NMRTextReader().guess_can_open(f)
    m = sp.read(f)
    assert m.attrs["provenance"]["reader"] == "nmr-text"
    assert m.dims == ("shift",) and m.coords["shift"].attrs["units"] == "ppm"
    assert m.attrs["nucleus"] == "7Li" and m.attrs["sample"] == "LiBH4"
    assert m.attrs["acquisition"]["sf_mhz"] == pytest.approx(155.51)
    np.testing.assert_allclose(m.coords["shift"].values, ppm, atol=1e-5)
    np.testing.assert_allclose(m.values, y, rtol=1e-5, atol=1e-9)
    assert m.coords["shift"].values[np.argmax(m.values)] == pytest.approx(-0.9, abs=0.1)
    json.dumps(m.attrs)


@pytest.mark.parametrize("sep", ["\t", " ", "  ", ";"])
def test_separators_and_no_comments(tmp_path, sep):
    f = tmp_path / "s.txt"
    f.write_text(f"PPM{sep}Intensity\n" + "\n".join(f"{x}{sep}{x * x}" for x in (3.0, 2.0, 1.0)) + "\n")
    assert NMRTextReader().guess_can_open(f)
    m = sp.read(f)
    np.testing.assert_allclose(m.coords["shift"].values, [3, 2, 1])
    np.testing.assert_allclose(m.values, [9, 4, 1])
    assert m.attrs["nucleus"] is None and m.attrs["sample"] == "s"


def test_hz_without_sf_is_error(tmp_path):
    f = tmp_path / "hz.csv"
    f.write_text("# nucleus: 11B\nhz,intensity\n100,1\n0,2\n")
    with pytest.raises(ReaderError, match="sf_mhz") as e:
        sp.read(f)
    assert "hz.csv" in str(e.value)


@pytest.mark.parametrize("content,match", [
    ("", "empty"),
    ("# only a comment\n", "no header"),
    ("ppm,intensity\n", "no data rows"),
    ("ppm,intensity\n1,2\n2,nan\n", "NaN"),
    ("ppm,intensity\n1,2\n2,abc\n", "non-numeric"),
    ("ppm,intensity\n1\n", "2 columns"),
    ("wavenumber,absorbance\n1,2\n", "header"),
    ("1.0,2.0\n3.0,4.0\n", "header"),
    ("# sf_mhz: 99999\nppm,intensity\n1,2\n", "sf_mhz"),
])
def test_bad_text(tmp_path, content, match):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(ReaderError, match=match) as e:
        sp.read(f, reader="nmr-text")
    assert "bad.csv" in str(e.value)


def test_guess_rejects_other_tables(tmp_path):
    r = NMRTextReader()
    f = tmp_path / "xrd.xy"
    f.write_text("two_theta,intensity\n10,1\n")
    assert not r.guess_can_open(f)
    f.write_text("10 1\n11 2\n")
    assert not r.guess_can_open(f)
    f.write_bytes(b"\x00\x01ppm")
    assert not r.guess_can_open(f)
    assert not r.guess_can_open(tmp_path)


def test_sample_data_csv(repo_root):
    tf = repo_root / "sample_data" / "nmr" / "truth.json"
    if not tf.is_file():
        pytest.skip("sample_data/nmr not generated")
    for t in (t for t in json.loads(tf.read_text()).values() if t["format"] == "csv"):
        m = sp.read(repo_root / "sample_data" / "nmr" / t["path"])
        assert m.attrs["nucleus"] == t["nucleus"] and m.attrs["sample"] == t["sample"]
        assert m.attrs["acquisition"]["sf_mhz"] == pytest.approx(t["sf_mhz"])
        assert m.shape == (t["npoints"],)


def test_latin1_comment_is_readable(tmp_path):
    """A cp1252/Latin-1 comment (``# sample: café``) never makes the file unreadable."""
    f = tmp_path / "latin.csv"
    f.write_bytes("# sample: café\n# nucleus: 11B\nppm,intensity\n1,2\n2,3\n3,4\n".encode("latin-1"))
    m = sp.read(f)
    assert m.attrs["sample"] == "café"
    np.testing.assert_array_equal(m.values, [2, 3, 4])


@pytest.mark.parametrize("content,line", [("ppm,intensity\n1,2\n2,abc\n", "line 3"),
                                          ("ppm,intensity\n1,2\n2\n", "line 3")])
def test_bad_row_names_its_line(tmp_path, content, line):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(ReaderError, match=line):
        sp.read(f, reader="nmr-text")
