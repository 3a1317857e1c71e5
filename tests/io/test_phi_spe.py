"""ULVAC-PHI MultiPak .spe reader (the layout yadg documents).

No public .spe file is in ``../shared/realdata`` and none may be downloaded. The file is written
from the layout yadg documents (``yadg/extractors/phi/spe.py``: SOFH/EOFH ASCII header with
``SpectralRegDef`` lines, 16-byte data header, 96-byte region headers, f8 values each followed by
the dwell time as f4), filled with the **real** intensities of the PHI VersaProbe II export
``xps/Mutlipak_vms.npl`` (MANIFEST; read with the VAMAS reader). The reader must give the same
numbers as the VAMAS file, and as yadg's own reading where yadg can read the file (yadg 7.0.1
fails on three regions or more; tests/io/DATA_README.md).
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.testing.contract import ReaderContract

NAMES = {"C 1s": "C1s", "O 1s": "O1s", "S 2p": "S2p", "N 1s": "N1s", "Mo 3d": "Mo3d"}


def write_spe(path: Path, regions: list[tuple[str, np.ndarray, np.ndarray]], dwell: float = 0.05) -> Path:
    """A PHI .spe with ``(name, binding energies, counts/s)`` regions (f8 values)."""
    lines = ["SOFH", "Platform: Windows", "FileDesc: MoS2 test", "SoftwareVersion: SS 9.3.0.3",
             "InstrumentModel: PHI VersaProbe II", "Operator: test", "XraySource: Al mono",
             f"NoSpectralReg: {len(regions)}"]
    for i, (name, be, _y) in enumerate(regions, 1):
        step = (be[-1] - be[0]) / (be.size - 1)
        lines.append(f"SpectralRegDef: {i} {i} {name} 6 {be.size} {step:.4f} {be[0]:.1f} {be[-1]:.1f} "
                     f"{be[0]:.1f} {be[-1]:.1f}    {dwell:.6f} 46.95 {name}")
    lines.append("EOFH")
    head = ("\n".join(lines) + "\n").encode()
    n_tr = len(regions)
    data_start = 16 + 96 * n_tr
    body = bytearray(struct.pack("<4I", 1, n_tr, 96 * n_tr, 16))
    blobs = bytearray()
    for i, (_name, _be, y) in enumerate(regions, 1):
        vals = np.asarray(y, "<f8").tobytes()
        eod = data_start + len(blobs) + len(vals)
        h = [i, 0, 0, i, 0, len(y), 0, 0] + [0] * 16
        h[19], h[20], h[23] = len(vals), len(y), eod
        hb = bytearray(struct.pack("<24I", *h))
        hb[72:76] = b"f8\x00\x00"
        hb[56:60] = b"c/s\x00"
        body += hb
        blobs += vals + struct.pack("<f", dwell)
    path.write_bytes(head + bytes(body) + bytes(blobs))
    return path


@pytest.fixture(scope="module")
def npl(realdata):
    p = realdata / "xps" / "Mutlipak_vms.npl"
    if not p.is_file():
        pytest.skip("real PHI VAMAS export not available")
    return sp.read(p)


@pytest.fixture(scope="module")
def spe(npl, tmp_path_factory):
    regions = []
    for reg, short in NAMES.items():
        sel = npl.coords["region"].values == reg
        regions.append((short, npl.coords["binding_energy"].values[sel], npl.values[0, sel]))
    return write_spe(tmp_path_factory.mktemp("phi") / "MoS2.spe", regions)


class TestPhiSpeReader(ReaderContract):
    reader = "phi-spe"

    @pytest.fixture(autouse=True)
    def _file(self, spe):
        self._spe = spe

    def good_files(self):
        return [self._spe]


def test_real_values_equal_the_vamas_export(npl, spe):
    m = sp.read(spe)
    assert m.attrs["provenance"]["reader"] == "phi-spe" and m.dims == ("level", "channel")
    assert list(dict.fromkeys(m.coords["region"].values)) == list(NAMES)
    np.testing.assert_array_equal(m.values, npl.values)                     # f8: the same numbers
    np.testing.assert_allclose(m.coords["binding_energy"].values, npl.coords["binding_energy"].values,
                               rtol=0, atol=1e-9)
    # MANIFEST: C 1s max 6265.0 c/s at 284.85 eV; Mo 3d max 4206.25 at 228.45 eV
    for reg, top, at in (("C 1s", 6265.0, 284.85), ("Mo 3d", 4206.25, 228.45)):
        sel = m.coords["region"].values == reg
        assert m.values[0, sel].max() == top
        assert m.coords["binding_energy"].values[sel][np.argmax(m.values[0, sel])] == pytest.approx(at, abs=1e-6)
    info = {r["name"]: r for r in m.attrs["acquisition"]["regions"]}
    assert info["C 1s"]["n"] == 601 and info["C 1s"]["pass_energy_eV"] == 46.95
    assert m.attrs["instrument"] == "PHI VersaProbe II" and m.attrs["sample"] == "MoS2 test"


def test_same_numbers_as_yadg(npl, tmp_path):
    """yadg (GPL, not a dependency) reads files of up to two regions; ours must equal its reading."""
    pytest.importorskip("yadg")
    from yadg.extractors.phi.spe import extract_from_path

    regions = []
    for reg in ("C 1s", "O 1s"):
        sel = npl.coords["region"].values == reg
        regions.append((NAMES[reg], npl.coords["binding_energy"].values[sel], npl.values[0, sel]))
    p = write_spe(tmp_path / "two.spe", regions)
    m = sp.read(p)
    tree = extract_from_path(p)
    for reg in ("C 1s", "O 1s"):
        sel = m.coords["region"].values == reg
        np.testing.assert_array_equal(m.values[0, sel], tree[NAMES[reg]]["y"].values)
        np.testing.assert_array_equal(m.coords["binding_energy"].values[sel], tree[NAMES[reg]]["E"].values)


def test_damage_and_other_formats_are_refused(spe, tmp_path):
    data = spe.read_bytes()
    cut = tmp_path / "cut.spe"
    cut.write_bytes(data[:-2000])
    with pytest.raises(ReaderError, match="cut.spe: truncated: region Mo3d ends"):
        sp.read(cut)
    winspec = tmp_path / "ccd.spe"
    winspec.write_bytes(b"\x00" * 4100)
    with pytest.raises(ReaderError, match="not a PHI MultiPak .spe file"):
        sp.read(winspec, reader="phi-spe")
    no_regions = tmp_path / "profile.spe"
    no_regions.write_bytes(b"SOFH\nFileDesc: x\nEOFH\n" + b"\x00" * 64)
    with pytest.raises(ReaderError, match="defines no spectral region"):
        sp.read(no_regions)
    bad = bytearray(data)
    i = bad.index(b"EOFH\n") + 5
    struct.pack_into("<I", bad, i + 4, 4)       # the data header says 4 regions, the text 5
    p = tmp_path / "inconsistent.spe"
    p.write_bytes(bytes(bad))
    with pytest.raises(ReaderError, match="holds 4 regions"):
        sp.read(p)

