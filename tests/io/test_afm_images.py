"""JPK .jpk images through AFMReader: the real public file of ../shared/realdata/afm/sample_0.jpk
(AFMReader's test data; MANIFEST facts, tests/io/DATA_README.md), values equal AFMReader's own."""
from __future__ import annotations

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.testing.contract import ReaderContract

pytest.importorskip("AFMReader")


@pytest.fixture(scope="module")
def jpk(realdata):
    p = realdata / "afm" / "sample_0.jpk"
    if not p.is_file():
        pytest.skip("real JPK image not available")
    return p


class TestJpkImageReader(ReaderContract):
    reader = "jpk-image"

    @pytest.fixture(autouse=True)
    def _file(self, jpk):
        self._jpk = jpk

    def good_files(self):
        return [self._jpk]


def test_manifest_facts_and_afmreader_values(jpk):
    from AFMReader.jpk import load_jpk

    m = sp.read(jpk)
    assert m.dims == ("channel", "y", "x") and m.shape == (4, 256, 256)
    assert set(m.channel.values) == {"height_trace", "height_retrace", "measuredHeight_trace",
                                     "measuredHeight_retrace"}
    assert m.attrs["channel_units"] == ["m"] * 4 and m.x.attrs["units"] == "m"
    acq = m.attrs["acquisition"]
    assert acq["scan_size_x_m"] == pytest.approx(3.2691651420070083e-07)
    assert acq["scan_size_y_m"] == pytest.approx(3.2691651420070083e-07)
    assert acq["pixels_x"] == acq["pixels_y"] == 256
    assert {"amplitude_trace", "phase_trace", "error_trace"} <= set(acq["skipped_channels"])
    # MANIFEST (AFMReader 0.0.7): height_trace mean/min/max in nm
    ht = m.sel(channel="height_trace").values
    assert ht.mean() * 1e9 == pytest.approx(3345.370527, abs=1e-5)
    assert ht.min() * 1e9 == pytest.approx(3302.591820, abs=1e-5)
    assert ht.max() * 1e9 == pytest.approx(3360.950042, abs=1e-5)
    assert m.sel(channel="measuredHeight_trace").values.mean() * 1e9 == pytest.approx(3819.892565, abs=1e-5)
    for c in m.channel.values:
        img, px_nm = load_jpk(jpk, channel=str(c))
        np.testing.assert_allclose(m.sel(channel=c).values, np.asarray(img, float) * 1e-9, rtol=1e-15)
    # pixel centres at (i + 1/2) * the pixel size AFMReader gives
    assert float(m.x[1] - m.x[0]) * 1e9 == pytest.approx(px_nm, rel=1e-12)
    one = sp.read(jpk, channel="height_trace")
    assert one.shape == (1, 256, 256)


def test_refusals_name_the_file_and_reason(jpk, tmp_path):
    import tifffile

    with pytest.raises(ReaderError, match="AFMReader gives no unit"):
        sp.read(jpk, channel="phase_trace")
    with pytest.raises(ReaderError, match="no channel 'nope'"):
        sp.read(jpk, channel="nope")
    plain = tmp_path / "plain.jpk"
    tifffile.imwrite(plain, np.zeros((4, 4), np.uint8))
    tifffile.imwrite(plain, np.zeros((4, 4), np.uint8), append=True)
    with pytest.raises(ReaderError, match="plain.jpk: a TIFF without JPK channel tags"):
        sp.read(plain)
    z = tmp_path / "force.jpk"
    z.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(ReaderError, match="force.jpk: not a JPK image: a ZIP container"):
        sp.read(z, reader="jpk-image")


def test_missing_library_names_the_extra(jpk, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_afmreader(name, *a, **k):
        if name.startswith("AFMReader"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_afmreader)
    with pytest.raises(ReaderError, match=r'pip install "specproc\[afm-images\]"'):
        sp.read(jpk, reader="jpk-image")
