"""Bruker OPUS reader: every block labelled (MANIFEST facts of the real file), absorbance by
default, a transmittance block never taken for absorbance, truncated / foreign files refused."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.io.opus import OpusReader, block_label


@pytest.fixture(scope="module")
def opus_file(realdata):
    p = realdata / "ftir" / "test.0000"
    if not p.is_file():
        pytest.skip("real OPUS file not available")
    return p


def test_manifest_facts_absorbance_block(opus_file):
    m = sp.read(opus_file)
    assert m.attrs["provenance"]["reader"] == "opus"
    acq = m.attrs["acquisition"]
    assert acq["y_kind"] == "absorbance" and acq["block"] == "AB"
    assert m.sizes["wavenumber"] == 2567
    x, y = m.wavenumber.values, m.values
    assert x[0] == pytest.approx(699.3889538645833) and x[-1] == pytest.approx(3998.3449384537757)
    assert np.all(np.diff(x) > 0)
    assert acq["resolution_cm1"] == 4.0 and acq["n_scans"] == 32 and acq["apodization"] == "B3"
    assert str(acq["zero_filling"]) == "2" and acq["beamsplitter"] == "KBr" and acq["source"] == "MIR"
    assert acq["detector"].startswith("LN-MCT Photovoltaic")
    assert m.attrs["instrument"] == "VERTEX 80V"
    assert m.attrs["sample"] == "MCT D317 1mm² [8500 - 700 Cm-1]"
    assert m.attrs["date"].startswith("06/02/2020 13:09:58.095")
    # clipped at 6.0 on 20 points spanning 2354.010 ... 2378.437 cm-1 (CO2 region)
    clipped = x[y >= 5.9]
    assert y.max() == 6.0 and clipped.size == 20
    assert clipped.min() == pytest.approx(2354.010, abs=1e-3) and clipped.max() == pytest.approx(2378.437, abs=1e-3)
    sel = (y < 5.9) & (x > 750) & (x < 3900)
    assert y[sel].max() == pytest.approx(2.7274, abs=1e-4)
    assert x[sel][np.argmax(y[sel])] == pytest.approx(2303.869, abs=1e-3)


def test_every_block_listed_and_labelled(opus_file):
    blocks = sp.read(opus_file).attrs["original_metadata"]["blocks"]
    expected = {"Text Information", "Optik", "Fourier Transformation", "Acquisition", "Sample", "IgSm", "PhSm",
                "ScSm", "AB", "Instrument (Rf)", "Optik (Rf)", "Acquisition (Rf)", "Fourier Transformation (Rf)",
                "IgRf", "ScRf", "History", "Instrument"}
    assert expected <= set(blocks)
    assert blocks["AB"]["y_kind"] == "absorbance"
    assert blocks["ScSm"]["y_kind"] == blocks["ScRf"]["y_kind"] == "single_channel"
    assert blocks["IgSm"]["y_kind"] == "interferogram" and blocks["IgSm"]["npt"] == 3177
    assert blocks["ScRf"]["npt"] == 2573


def test_other_blocks(opus_file):
    sc = sp.read(opus_file, block="ScSm")
    assert sc.attrs["acquisition"]["y_kind"] == "single_channel" and sc.sizes["wavenumber"] == 2567
    assert float(sc.max()) == pytest.approx(0.22727857530117035)
    assert float(sc.wavenumber.values[np.argmax(sc.values)]) == pytest.approx(1293.355, abs=1e-3)
    rf = sp.read(opus_file, block="ScRf")
    assert rf.sizes["wavenumber"] == 2573
    assert float(rf.wavenumber.max()) == pytest.approx(4003.4875042910153)
    assert float(rf.wavenumber.min()) == pytest.approx(696.817670945964)
    ig = sp.read(opus_file, block="IgSm")
    assert ig.dims == ("point",) and ig.sizes["point"] == 3177 and ig.attrs["signal_type"] == "interferogram"
    with pytest.raises(ReaderError, match="no block 'TR'"):
        sp.read(opus_file, block="TR")


def _retype(data: bytes, old_channel: int, new_channel: int) -> bytes:
    """Rewrite the directory entries of the ratioed blocks (AB data + its parameters) to another kind."""
    out = bytearray(data)
    cursor = 24
    while cursor + 12 <= 504:
        dtype, chan = out[cursor], out[cursor + 1]
        offset = struct.unpack("<I", out[cursor + 8:cursor + 12])[0]
        if offset == 0:
            break
        if dtype in (15, 31) and chan == old_channel:
            out[cursor + 1] = new_channel
        cursor += 12
    return bytes(out)


def test_transmittance_block_is_never_absorbance(opus_file, tmp_path):
    # the same file with its ratioed block re-typed as transmittance (kind 5 = channel byte 20):
    # brukeropusreader would still call it "AB"; the reader must say TR / transmittance
    p = tmp_path / "tr.0"
    p.write_bytes(_retype(opus_file.read_bytes(), 16, 20))
    m = sp.read(p)
    assert m.attrs["acquisition"]["y_kind"] == "transmittance" and m.attrs["acquisition"]["block"] == "TR"
    assert "AB" not in m.attrs["original_metadata"]["blocks"]
    assert block_label(15, 16) == "AB" and block_label(15, 20) == "TR" and block_label(31, 20) == "TR Data Parameter"
    assert block_label(7, 4) == "ScSm" and block_label(11, 8) == "IgRf"


def test_truncated_file(opus_file, tmp_path):
    for n in (30000, 600, 100):
        p = tmp_path / f"trunc{n}.0"
        p.write_bytes(opus_file.read_bytes()[:n])
        with pytest.raises(ReaderError, match="truncated|header shorter|no spectrum"):
            OpusReader().read(p)


def test_foreign_and_empty(tmp_path):
    p = tmp_path / "x.0"
    p.write_bytes(b"not an opus file" * 100)
    assert not OpusReader().guess_can_open(p)
    with pytest.raises(ReaderError, match="not a Bruker OPUS"):
        OpusReader().read(p)
    e = tmp_path / "e.0"
    e.write_bytes(b"")
    with pytest.raises(ReaderError, match="empty"):
        OpusReader().read(e)


def _drop_blocks(data: bytes, labels: set[str]) -> bytes:
    """The file with the directory entries of ``labels`` removed (the later entries moved up)."""
    out = bytearray(data)
    entries = []
    cursor = 24
    while cursor + 12 <= 504:
        entry = bytes(out[cursor:cursor + 12])
        if struct.unpack("<I", entry[8:12])[0] == 0:
            break
        label = block_label(entry[0], entry[1], entry[2])
        if label not in labels and (label or "").replace(" Data Parameter", "") not in labels:
            entries.append(entry)
        cursor += 12
    table = b"".join(entries)
    out[24:cursor] = table + b"\x00" * (cursor - 24 - len(table))
    return bytes(out)


def test_absorbance_computed_from_single_channels_equals_the_ab_block(opus_file, tmp_path):
    """Without its AB block the file's absorbance is -log10(ScSm/ScRf), said in reader_notes; it
    equals OPUS's own AB block (the truth recorded in the same file) on every point, the clipped
    CO2 points at OPUS's limit of 6 included."""
    ab = sp.read(opus_file)
    p = tmp_path / "no_ab.0"
    p.write_bytes(_drop_blocks(opus_file.read_bytes(), {"AB"}))
    m = sp.read(p)
    acq = m.attrs["acquisition"]
    assert "AB" not in m.attrs["original_metadata"]["blocks"]
    assert acq["y_kind"] == "absorbance" and acq["computed_from"] == "-log10(ScSm/ScRf)"
    assert any("-log10(ScSm/ScRf)" in n for n in acq["reader_notes"])
    assert any("set to A = 6" in n for n in acq["reader_notes"])
    np.testing.assert_allclose(m.wavenumber.values, ab.wavenumber.values, rtol=0, atol=1e-9)
    np.testing.assert_allclose(m.values, ab.values, rtol=0, atol=1e-6)   # float32 channels: ~1e-7
    # the same when asked for by name
    assert sp.read(p, block="AB").attrs["acquisition"]["computed_from"] == "-log10(ScSm/ScRf)"


def test_no_ratioed_block_and_no_pair_is_refused_naming_the_blocks(opus_file, tmp_path):
    p = tmp_path / "sample_only.0"
    p.write_bytes(_drop_blocks(opus_file.read_bytes(), {"AB", "ScRf"}))
    with pytest.raises(ReaderError, match=r"no sample \+ reference single-channel pair.*IgSm.*ScSm") as info:
        sp.read(p)
    assert "sample_only.0" in str(info.value)
    # a block asked for by name is still read
    assert sp.read(p, block="ScSm").attrs["acquisition"]["y_kind"] == "single_channel"
    ifg = tmp_path / "interferogram_only.0"
    ifg.write_bytes(_drop_blocks(opus_file.read_bytes(), {"AB", "ScRf", "ScSm", "PhSm"}))
    with pytest.raises(ReaderError, match="blocks in the file: IgSm, IgRf|blocks in the file: IgRf, IgSm"):
        sp.read(ifg)
