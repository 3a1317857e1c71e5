"""Magritek Spinsolve reader (nmrglue.spinsolve).

No public Spinsolve folder is in ``../shared/realdata`` and none may be downloaded: the folders
are written from the documented layout (nmrglue's ``fileio/spinsolve.py``: ``acqu.par``
``name = value`` lines; ``data.1d`` = 32-byte header of eight int32, then float32 x axis and
interleaved real/imaginary points) with a known synthetic FID, and checked against nmrglue's own
reading and ppm scale (tests/io/DATA_README.md).
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.testing.contract import ReaderContract

B1 = 43.49589           # MHz, a 1 T benchtop magnet's 1H frequency
BW_KHZ = 5.0
LOW_HZ = -1957.2


def write_spinsolve(folder: Path, peaks_ppm, n: int = 4096, rng=None, fid_name: str = "data.1d",
                    xdim: int | None = None, ydim: int = 1) -> Path:
    """A Spinsolve folder whose FID holds decaying lines at ``peaks_ppm`` in nmrglue's convention
    (``fft`` without reversal + ``make_uc``), i.e. ``exp(-2 pi i f t)`` at ``f = ppm*b1 - carrier``."""
    folder.mkdir(parents=True, exist_ok=True)
    sw = BW_KHZ * 1000
    car = LOW_HZ + sw / 2
    t = np.arange(n) / sw
    fid = np.zeros(n, complex)
    for k, ppm in enumerate(peaks_ppm):
        fid += (1.0 + 0.5 * k) * np.exp(-2j * np.pi * (ppm * B1 - car) * t) * np.exp(-t / 0.25)
    if rng is not None:
        fid += rng.normal(0, 0.01, n) + 1j * rng.normal(0, 0.01, n)
    (folder / "acqu.par").write_text(
        'Sample               = "ethanol in D2O"\nSolvent              = "D2O"\n'
        f"b1Freq               = {B1}\nbandwidth            = {BW_KHZ}\nlowestFrequency      = {LOW_HZ}\n"
        f'nrPnts               = {n}\nnrScans              = 16\nrxChannel            = "1H"\n'
        'Protocol             = "1D PROTON"\nstartTime            = "2024-03-05T10:11:12.000"\n')
    inter = np.empty(2 * n, "<f4")
    inter[0::2], inter[1::2] = fid.real, fid.imag
    head = struct.pack("<8i", 0, 0, 1, 504, xdim or n, ydim, 1, 1)
    (folder / fid_name).write_bytes(head + (t * 1e6).astype("<f4").tobytes() + inter.tobytes())
    return folder


TRUE_PPM = (1.18, 3.65)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_spinsolve(tmp_path_factory.mktemp("spinsolve") / "ethanol", TRUE_PPM,
                           rng=np.random.default_rng(28))


class TestSpinsolveReader(ReaderContract):
    reader = "spinsolve"

    @pytest.fixture(autouse=True)
    def _folder(self, folder):
        self._folder = folder

    def good_files(self):
        return [self._folder]

    def test_bad_files_name_the_file(self, tmp_path):
        pytest.skip("a Spinsolve experiment is a folder; its bad inputs are in test_damaged_folders_are_refused")


def test_values_and_axis_agree_with_nmrglue(folder):
    import nmrglue as ng

    from specproc.techniques.nmr.processing import process

    m = sp.read(folder)
    assert sp.read(folder / "data.1d").equals(m)                 # the FID file given alone
    dic, data = ng.spinsolve.read(str(folder))
    np.testing.assert_array_equal(np.conj(m.values), np.asarray(data, complex))
    acq = m.attrs["acquisition"]
    assert m.attrs["nucleus"] == "1H" and m.attrs["sample"] == "ethanol in D2O"
    assert acq["sf_mhz"] == pytest.approx(B1) and acq["sw_hz"] == pytest.approx(5000.0)
    assert acq["o1_hz"] == pytest.approx(LOW_HZ + 2500.0) and acq["ns"] == 16
    assert "conjugate" in acq["reader_notes"][0]
    assert m.time.values[1] == pytest.approx(1 / 5000.0)
    # nmrglue's way (fft + make_uc) and specproc's processing put the lines at the same ppm
    spec_ng = ng.proc_base.fft(data)
    ppm_ng = ng.spinsolve.make_uc(dic, spec_ng).ppm_scale()
    s = process(m, zero_fill=None, apodization=None, phase=None)
    ppm_sp = s.coords["shift"].values
    step = 5000.0 / data.size / B1
    for true in TRUE_PPM:
        near_ng = np.abs(ppm_ng - true) < 0.3
        near_sp = np.abs(ppm_sp - true) < 0.3
        got_ng = ppm_ng[near_ng][np.argmax(np.abs(spec_ng[near_ng]))]
        got_sp = ppm_sp[near_sp][np.argmax(s.values[near_sp])]
        assert got_sp == pytest.approx(true, abs=step) and got_ng == pytest.approx(got_sp, abs=step / 2)


def test_damaged_folders_are_refused(tmp_path):
    good = write_spinsolve(tmp_path / "good", (2.0,), n=512)
    cut = write_spinsolve(tmp_path / "cut", (2.0,), n=512)
    (cut / "data.1d").write_bytes((cut / "data.1d").read_bytes()[:3000])
    with pytest.raises(ReaderError, match=r"data.1d: file size 3000 B does not match its header"):
        sp.read(cut)
    two_d = write_spinsolve(tmp_path / "twod", (2.0,), n=512, ydim=8)
    with pytest.raises(ReaderError, match="multi-dimensional Spinsolve file"):
        sp.read(two_d, reader="spinsolve")
    spec_only = tmp_path / "spec_only"
    spec_only.mkdir()
    (spec_only / "acqu.par").write_text((good / "acqu.par").read_text())
    (spec_only / "spectrum.1d").write_bytes((good / "data.1d").read_bytes())
    with pytest.raises(ReaderError, match=r"only processed spectra \(spectrum.1d\) and no FID"):
        sp.read(spec_only, reader="spinsolve")
    bad_par = write_spinsolve(tmp_path / "badpar", (2.0,), n=512)
    (bad_par / "acqu.par").write_text((good / "acqu.par").read_text().replace(f"b1Freq               = {B1}",
                                                                              "b1Freq               = n/a"))
    with pytest.raises(ReaderError, match="b1Freq is missing or not a number"):
        sp.read(bad_par)
    no_par = write_spinsolve(tmp_path / "nopar", (2.0,), n=512)
    (no_par / "acqu.par").unlink()
    with pytest.raises(ReaderError, match="nopar"):
        sp.read(no_par, reader="spinsolve")
