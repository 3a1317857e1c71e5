"""Bruker Nanoscope images through pySPM.

No public Nanoscope image file is available here (MANIFEST: AFMReader's sample_0.spm is missing
from the snapshot, pySPM's test files are header-only) and nothing may be downloaded. The file is
written from the documented header layout (Nanoscope ``\\*File list`` text header, scanner list
with the Z sensitivity, one ``\\*Ciao image list`` per channel, int16/int32 data at the stated
offsets) with a known synthetic topography (a step of known height on a tilted plane); the
reader must recover the truth and give pySPM's own numbers (tests/io/DATA_README.md).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.testing.contract import ReaderContract

pySPM = pytest.importorskip("pySPM")

NX, NY = 64, 64
SCAN_NM = (800.0, 800.0)
ZSCALE_V = 440.0          # "@2:Z scale: ... 440.0000 V" over the int16 range
SENS_NM_PER_V = 40.0      # "@Sens. Zsens: V 40.00000 nm/V"
LSB_NM = ZSCALE_V / 65536 * SENS_NM_PER_V
STEP_NM = 12.5


def _truth_raw(rng) -> np.ndarray:
    """int16 raw heights: a tilted plane plus a 12.5 nm step in the right half."""
    y, x = np.mgrid[0:NY, 0:NX]
    h_nm = 0.05 * x + 0.02 * y + np.where(x >= NX // 2, STEP_NM, 0.0) + rng.normal(0, 0.05, (NY, NX))
    return np.round(h_nm / LSB_NM).astype("<i2")


def write_spm(path: Path, images: list[tuple[str, str, np.ndarray]], force: bool = False) -> Path:
    """A Nanoscope file: header padded to 8192 bytes, then each channel's int16 data."""
    header_len = 8192
    lines = ["\\*File list", "\\Version: 0x09200000", f"\\Data length: {header_len}",
             "\\*Scanner list", f"\\@Sens. Zsens: V {SENS_NM_PER_V:.5f} nm/V",
             "\\@Sens. DeflSens: V 1.000000 ?/V",
             "\\*Ciao scan list", f"\\Scan Size: {SCAN_NM[0]:g} {SCAN_NM[1]:g} nm"]
    if force:
        lines.append("\\*Ciao force image list")
    off = header_len
    for name, direction, raw in images:
        n = raw.size * 2
        sens = "Sens. DeflSens" if name == "Peak Force Error" else "Sens. Zsens"
        lines += ["\\*Ciao image list", f"\\Data offset: {off}", f"\\Data length: {n}", "\\Bytes/pixel: 2",
                  f"\\Samps/line: {raw.shape[1]}", f"\\Number of lines: {raw.shape[0]}",
                  f"\\Scan Size: {SCAN_NM[0]:g} {SCAN_NM[0] * raw.shape[0] / raw.shape[1]:g} nm",
                  "\\Aspect Ratio: 1:1", f"\\Line Direction: {direction}",
                  f'\\@2:Image Data: S [{name.replace(" ", "")}] "{name}"',
                  f"\\@2:Z scale: V [{sens}] (0.006713867 V/LSB) {ZSCALE_V:.4f} V",
                  f"\\@2:Z offset: V [{sens}] (0.006713867 V/LSB) 0 V"]
        off += n
    lines.append("\\*File list end")
    head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
    assert len(head) < header_len
    path.write_bytes(head + b"\x1a" * (header_len - len(head)) + b"".join(r.astype("<i2").tobytes()
                                                                         for _, _, r in images))
    return path


@pytest.fixture(scope="module")
def spm(tmp_path_factory) -> Path:
    rng = np.random.default_rng(28)
    raw = _truth_raw(rng)
    err = rng.integers(-300, 300, (NY, NX)).astype("<i2")
    return write_spm(tmp_path_factory.mktemp("nanoscope") / "step.spm",
                     [("Height Sensor", "Trace", raw), ("Height Sensor", "Retrace", raw[:, ::-1].copy()),
                      ("Peak Force Error", "Trace", err)])


class TestNanoscopeReader(ReaderContract):
    reader = "nanoscope"

    @pytest.fixture(autouse=True)
    def _file(self, spm):
        self._spm = spm

    def good_files(self):
        return [self._spm]


def test_values_equal_pyspm_and_recover_the_step(spm):
    m = sp.read(spm)
    assert m.dims == ("channel", "y", "x") and m.shape == (2, NY, NX)
    assert list(m.channel.values) == ["Height Sensor (trace)", "Height Sensor (retrace)"]
    assert m.attrs["channel_units"] == ["m", "m"]
    assert any("Peak Force Error" in s for s in m.attrs["acquisition"]["skipped_channels"])  # unit '?': skipped
    scan = pySPM.Bruker(spm)
    ref = np.flipud(scan.get_channel("Height Sensor", backward=False).pixels) * 1e-9
    np.testing.assert_allclose(m.sel(channel="Height Sensor (trace)").values, ref, rtol=1e-12, atol=0)
    acq = m.attrs["acquisition"]
    assert acq["scan_size_x_m"] == pytest.approx(SCAN_NM[0] * 1e-9)
    assert acq["scan_size_y_m"] == pytest.approx(SCAN_NM[0] * NY / NX * 1e-9)
    assert acq["pixels_x"] == NX and acq["pixels_y"] == NY
    # the step: right half minus left half after removing the plane, within the noise
    h = m.sel(channel="Height Sensor (trace)").values * 1e9
    y, x = np.mgrid[0:NY, 0:NX]
    flat = h - (0.05 * x + 0.02 * y[::-1])          # rows flipped to image orientation
    step = np.median(flat[:, NX // 2 + 2:]) - np.median(flat[:, :NX // 2 - 2])
    assert step == pytest.approx(STEP_NM, abs=3 * LSB_NM)


def test_one_channel_and_refusals(spm, tmp_path):
    one = sp.read(spm, channel="Height Sensor (retrace)")
    assert one.shape == (1, NY, NX)
    with pytest.raises(ReaderError, match="no channel 'Phase \\(trace\\)'"):
        sp.read(spm, channel="Phase (trace)")
    data = spm.read_bytes()
    cut = tmp_path / "cut.spm"
    cut.write_bytes(data[:-100])
    with pytest.raises(ReaderError, match="cut.spm: truncated: channel"):
        sp.read(cut)
    nohead = tmp_path / "nohead.spm"
    nohead.write_bytes(data[:1000])
    with pytest.raises(ReaderError, match="nohead.spm: truncated: the Nanoscope header has no"):
        sp.read(nohead)
    rng = np.random.default_rng(1)
    f = write_spm(tmp_path / "force.001", [("Height Sensor", "Trace", _truth_raw(rng))], force=True)
    with pytest.raises(ReaderError, match="force curve / force volume"):
        sp.read(f)
    wide = write_spm(tmp_path / "wide.spm", [("Height Sensor", "Trace", np.zeros((48, 64), "<i2"))])
    with pytest.raises(ReaderError, match=r"non-square image \(48 lines x 64 samples\)"):
        sp.read(wide)
    # any extension: recognised by the header (a .001 file is not taken for OPUS)
    g = write_spm(tmp_path / "image.001", [("Height Sensor", "Trace", _truth_raw(rng))])
    assert sp.read(g).attrs["provenance"]["reader"] == "nanoscope"
