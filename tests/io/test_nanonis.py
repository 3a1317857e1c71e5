"""Nanonis .sxm reader against the MANIFEST facts of the real file; truncation and bad headers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.testing.contract import ReaderContract

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "afm"
SXM = REAL / "A151216.123306-02602.sxm"


@pytest.fixture(scope="module")
def sxm():
    if not SXM.is_file():
        pytest.skip("real data not available")
    return sp.read(SXM)


def test_manifest_facts(sxm):
    m = sxm
    assert m.dims == ("channel", "y", "x") and m.shape == (18, 128, 128)
    names = ["Z", "Input_4", "Current", "Phase", "Amplitude", "Frequency_Shift", "Excitation", "LIX_1_omega",
             "LIY_1_omega"]
    assert list(m.channel.values) == [f"{n}_{d}" for n in names for d in ("forward", "backward")]
    units = dict(zip(m.channel.values, m.attrs["channel_units"]))
    assert units["Z_forward"] == "m" and units["Current_forward"] == "A" and units["Frequency_Shift_forward"] == "Hz"
    acq = m.attrs["acquisition"]
    assert acq["scan_size_x_m"] == 2e-9 and acq["scan_size_y_m"] == 2e-9
    assert acq["scan_dir"] == "up" and acq["scan_angle_deg"] == 0 and acq["bias_V"] == -0.0009
    assert acq["rec_date"] == "16.12.2015" and acq["rec_time"] == "11:39:44" and acq["acq_time_s"] == 3201.9
    # centre of the scan = SCAN_OFFSET
    assert np.isclose(m.x.values.mean(), -3.335099e-07, atol=1e-15)
    assert np.isclose(m.y.values.mean(), -3.124986e-07, atol=1e-15)
    facts = {"Z_forward": (-2.186161e-08, -2.186161e-08, -2.186161e-08),
             "Frequency_Shift_forward": (-3.232752, -4.840730, -1.466526),
             "Frequency_Shift_backward": (-3.237839, -5.017252, -1.245954),
             "Amplitude_forward": (1.000001e-10, 9.916741e-11, 1.006943e-10),
             "Current_forward": (1.451293e-13, -2.594385e-14, 3.411833e-13),
             "Phase_forward": (5.495171e-02, -1.476675, 2.033498),
             "Excitation_forward": (7.796308e-03, -2.055780e-03, 1.739717e-02)}
    for ch, (mean, lo, hi) in facts.items():
        v = m.sel(channel=ch).values
        assert np.isclose(v.mean(), mean, rtol=2e-6), ch
        assert np.isclose(v.min(), lo, rtol=2e-6) and np.isclose(v.max(), hi, rtol=2e-6), ch


def test_channel_selection_and_flat_height_warning(sxm):
    one = sp.read(SXM, channel="Z")
    assert list(one.channel.values) == ["Z_forward"]
    r = sp.afm.analyse(one)
    assert any("flat" in w for w in r.warnings)


def test_truncated_and_bad_header(tmp_path, sxm):
    raw = SXM.read_bytes()
    cut = tmp_path / "cut.sxm"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ReaderError, match="truncated"):
        sp.read(cut)
    nohdr = tmp_path / "nohdr.sxm"
    nohdr.write_bytes(raw[:3000])
    with pytest.raises(ReaderError, match="SCANIT_END"):
        sp.read(nohdr)
    bad = tmp_path / "bad.sxm"
    bad.write_bytes(raw.replace(b"       128       128", b"       abc       128", 1))
    with pytest.raises(ReaderError, match="SCAN_PIXELS"):
        sp.read(bad)


class TestNanonisContract(ReaderContract):
    reader = "nanonis"

    def good_files(self):
        if not SXM.is_file():
            pytest.skip("real data not available")
        return [SXM]
