"""Thermo OMNIC .spa/.spg reader (spectrochempy-omnic).

No public OMNIC file is in ``../shared/realdata`` and none may be downloaded: the files here are
written from the documented layout (spectrochempy-omnic's ``read_omnic.py`` comments: magic text,
name at byte 30, date at 296, key directory at 304, spectrum header fields, float32 intensities)
with a known synthetic spectrum, and the reader's values are checked against both the truth and
the reference library's own reading (tests/io/DATA_README.md).
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.testing.contract import ReaderContract

omnic_lib = pytest.importorskip("spectrochempy_omnic")

TRUTH = {"center": 1712.0, "width": 9.0, "height": 0.85, "baseline": 0.05}


def _truth_spectrum(x: np.ndarray, rng=None) -> np.ndarray:
    y = TRUTH["baseline"] + TRUTH["height"] * np.exp(-0.5 * ((x - TRUTH["center"]) / TRUTH["width"]) ** 2)
    if rng is not None:
        y = y + rng.normal(0, 0.002, x.size)
    return y


def _header(nx: int, first: float, last: float, xcode: int, ycode: int, nscan=32, nbkg=64) -> bytes:
    h = bytearray(212 + 40)
    h[0] = 3
    struct.pack_into("<I", h, 4, nx)
    h[8], h[12] = xcode, ycode
    struct.pack_into("<ff", h, 16, first, last)
    struct.pack_into("<III", h, 28, 2 * nx, nx // 2, nscan)
    struct.pack_into("<I", h, 52, nbkg)
    struct.pack_into("<I", h, 68, 3150)          # collection length, 1/100 s
    struct.pack_into("<f", h, 80, 15798.0)       # laser frequency, 1/cm
    struct.pack_into("<f", h, 188, 0.6329)       # optical velocity
    h[208:212] = b"Hx\x00\x00"
    return bytes(h)


def write_spa(path: Path, x_first: float, x_last: float, y: np.ndarray, xcode: int = 1, ycode: int = 17,
              name: str = "LiBH4 pellet") -> Path:
    """An .spa file: header, directory (02 header, 03 intensities, 00 end), header block, data."""
    y = np.asarray(y, "<f4")
    head = bytearray(304 + 16 * 3)
    head[:18] = b"Spectral Data File"
    head[30:30 + len(name)] = name.encode()
    struct.pack_into("<I", head, 296, 3_900_000_000)     # seconds since 1899-12-31: 2023-08-02
    hdr = _header(y.size, x_first, x_last, xcode, ycode)
    hpos = len(head)
    ipos = hpos + len(hdr)
    head[304] = 2
    struct.pack_into("<II", head, 306, hpos, len(hdr))
    head[320] = 3
    struct.pack_into("<II", head, 322, ipos, 4 * y.size)
    head[336] = 0
    path.write_bytes(bytes(head) + hdr + y.tobytes())
    return path


def write_spg(path: Path, x_first: float, x_last: float, ys: list[np.ndarray], ycode: int = 17) -> Path:
    """An .spg group: per spectrum directory lines 02 (header), 03 (intensities), 6B (title, date)."""
    n = len(ys)
    nlines = 3 * n
    head = bytearray(304 + 16 * nlines)
    head[:18] = b"Spectral Data File"
    head[30:40] = b"group.spg\x00"
    struct.pack_into("<H", head, 294, nlines)
    body = bytearray()
    base = len(head)
    for i, y in enumerate(ys):
        y = np.asarray(y, "<f4")
        hdr = _header(y.size, x_first, x_last, 1, ycode)
        title = f"spectrum {i}".encode().ljust(256, b"\x00") + struct.pack("<I", 3_900_000_000 + 60 * i)
        for k, (key, blob) in enumerate(((2, hdr), (3, y.tobytes()), (107, title))):
            line = 304 + 16 * (3 * i + k)
            head[line] = key
            struct.pack_into("<II", head, line + 2, base + len(body), len(blob))
            body += blob
    path.write_bytes(bytes(head) + bytes(body))
    return path


X_FIRST, X_LAST, NPT = 3999.64, 650.03, 3475  # OMNIC stores high -> low wavenumber


@pytest.fixture(scope="module")
def spa(tmp_path_factory) -> Path:
    x = np.linspace(X_FIRST, X_LAST, NPT)
    return write_spa(tmp_path_factory.mktemp("omnic") / "LiBH4.spa", X_FIRST, X_LAST,
                     _truth_spectrum(x, np.random.default_rng(28)))


class TestOmnicReader(ReaderContract):
    reader = "omnic"

    @pytest.fixture(autouse=True)
    def _file(self, spa):
        self._spa = spa

    def good_files(self):
        return [self._spa]


def test_values_equal_the_reference_library_and_recover_the_truth(spa):
    from spectrochempy_omnic import OMNICReader

    m = sp.read(spa)
    ref = OMNICReader(spa)
    assert m.attrs["provenance"]["reader"] == "omnic"
    x, y = m.wavenumber.values, m.values
    assert np.all(np.diff(x) > 0) and m.coords["wavenumber"].attrs["units"] == "1/cm"
    # the reference library's arrays, high -> low, equal ours reversed: the same numbers
    np.testing.assert_array_equal(x, np.asarray(ref.x, float)[::-1])
    np.testing.assert_array_equal(y, np.asarray(ref.data[0], float)[::-1])
    assert x[0] == pytest.approx(X_LAST, abs=1e-3) and x[-1] == pytest.approx(X_FIRST, abs=1e-3)
    # the synthetic band: centre within one grid step, height within the noise
    step = (X_FIRST - X_LAST) / (NPT - 1)
    assert x[np.argmax(y)] == pytest.approx(TRUTH["center"], abs=step)
    assert y.max() == pytest.approx(TRUTH["baseline"] + TRUTH["height"], abs=0.01)
    acq = m.attrs["acquisition"]
    assert acq["y_kind"] == "absorbance" and acq["n_scans"] == 32 and acq["n_background_scans"] == 64
    assert acq["laser_frequency_cm1"] == pytest.approx(15798.0)
    assert m.attrs["sample"] == "LiBH4 pellet"
    assert m.attrs["date"].startswith("2023-08-0")


def test_percent_transmittance_is_a_fraction_and_nm_axis_is_converted(tmp_path):
    x = np.linspace(X_FIRST, X_LAST, 500)
    t = 100 * 10 ** -_truth_spectrum(x)
    m = sp.read(write_spa(tmp_path / "t.spa", X_FIRST, X_LAST, t, ycode=16))
    assert m.attrs["acquisition"]["y_kind"] == "transmittance" and m.attrs["acquisition"]["y_scale"] == "percent"
    np.testing.assert_allclose(m.values, np.asarray(t, "<f4")[::-1] / 100, rtol=1e-6)
    # wavelength axis in nm (near-IR file): converted to 1/cm
    nm = np.linspace(2500.0, 1000.0, 300)
    m = sp.read(write_spa(tmp_path / "nir.spa", 2500.0, 1000.0, np.linspace(0.1, 0.2, 300), xcode=3))
    np.testing.assert_allclose(np.sort(m.wavenumber.values), np.sort(1e7 / nm.astype("<f4").astype(float)),
                               rtol=1e-6)
    assert any("nanometres" in n for n in m.attrs["acquisition"]["reader_notes"])


def test_group_reads_the_chosen_spectrum(tmp_path):
    from spectrochempy_omnic import OMNICReader

    x = np.linspace(X_FIRST, X_LAST, 400)
    ys = [_truth_spectrum(x) * (1 + 0.5 * i) for i in range(3)]
    p = write_spg(tmp_path / "series.spg", X_FIRST, X_LAST, ys)
    ref = OMNICReader(p)
    for i in range(3):
        m = sp.read(p, index=i)
        np.testing.assert_array_equal(m.values, np.asarray(ref.data[i], float)[::-1])
        assert m.attrs["sample"] == f"spectrum {i}"
        assert any("holds 3 spectra" in n for n in m.attrs["acquisition"]["reader_notes"])
    with pytest.raises(ReaderError, match=r"spectrum 3 requested, the file holds 3"):
        sp.read(p, index=3)


@pytest.mark.parametrize("case, match", [
    ("raman", "Raman"), ("ifg", "interferogram"), ("series", r"series file \(\.srs"),
    ("cut_data", "truncated"), ("cut_dir", "truncated"), ("bad_size", "header says 300 points"),
    ("no_magic", "no 'Spectral Data File'"),
])
def test_variants_and_damage_are_refused_by_name(tmp_path, case, match):
    x0, x1 = 3000.0, 1000.0
    y = np.linspace(0, 1, 300)
    p = tmp_path / f"{case}.spa"
    if case == "raman":
        write_spa(p, x0, x1, y, xcode=32, ycode=31)
    elif case == "ifg":
        write_spa(p, 0, 299, y, xcode=2, ycode=22)
    else:
        write_spa(p, x0, x1, y)
        b = bytearray(p.read_bytes())
        if case == "series":
            b[:18] = b"Spectral Exte File"
        elif case == "cut_data":
            b = b[:-400]
        elif case == "cut_dir":
            b = b[:312]
            b[304] = 2
        elif case == "bad_size":
            struct.pack_into("<I", b, 326, 4 * 299)
        elif case == "no_magic":
            b[:4] = b"XXXX"
        p.write_bytes(bytes(b))
    with pytest.raises(ReaderError, match=match) as info:
        sp.read(p, reader="omnic")
    assert p.name in str(info.value)


def test_missing_library_names_the_extra(spa, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_omnic(name, *a, **k):
        if name.startswith("spectrochempy_omnic"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_omnic)
    with pytest.raises(ReaderError, match=r'pip install "specproc\[omnic\]"'):
        sp.read(spa, reader="omnic")
