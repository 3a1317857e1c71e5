"""SPC reader (spc-io): the sample files against their JCAMP twins, generated variants (transmittance,
micrometres, XY subfiles, several subfiles), and bad input with clear errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError

pytest.importorskip("spc_io")

REPO = Path(__file__).resolve().parents[2]
SPC_DIR = REPO / "sample_data" / "ftir" / "spc"


def _write(path, x, ys, xtype=1, ytype=2, even=True, res=b"4"):
    """An SPC file written by spc-io (axis / value types set on the raw header: its writer omits them)."""
    from spc_io import SPC
    from spc_io.high_level.even_axis import EvenAxis
    from spc_io.low_level.headers.fxytype import Fxtype, Fytype

    if even:
        spc = SPC(xarray=EvenAxis(float(x[0]), float(x[-1]), int(len(x))))
        for y in ys:
            spc.add_subfile(yarray=np.asarray(y, np.float32))
    else:
        spc = SPC(xarray=None)
        for i, y in enumerate(ys):
            spc.add_subfile(xarray=np.asarray(x, np.float32), yarray=np.asarray(y, np.float32), z=float(i))
    raw = spc.to_spc_raw()
    raw.main_header.fxtype = Fxtype(xtype)
    raw.main_header.fytype = Fytype(ytype)
    raw.main_header.fres = res
    Path(path).write_bytes(raw.to_bytes())
    return Path(path)


def test_sample_spc_matches_its_jcamp_twin():
    p = SPC_DIR / "LiBH4.spc"
    m = sp.read(p)
    assert m.attrs["provenance"]["reader"] == "spc"
    acq = m.attrs["acquisition"]
    assert acq["y_kind"] == "absorbance" and acq["resolution_cm1"] == 4.0
    x = m.coords["wavenumber"].values
    assert np.all(np.diff(x) > 0) and x[0] == pytest.approx(400) and x[-1] == pytest.approx(4000)
    j = sp.read(REPO / "sample_data" / "ftir" / "LiBH4.jdx")
    np.testing.assert_allclose(x, j.coords["wavenumber"].values, atol=1e-3)
    np.testing.assert_allclose(m.values, j.values, atol=2e-5)     # float32 vs JCAMP's 1e-5 integer steps
    from specproc.io import guess_reader

    assert guess_reader(p).name == "spc"


def test_transmittance_micrometres_xy_and_subfiles(tmp_path):
    rng = np.random.default_rng(4)
    x = np.linspace(4000, 400, 500)
    a = 0.2 + 0.5 * np.exp(-((x - 1500) / 30) ** 2) + rng.normal(0, 1e-3, x.size)
    # %T (fytype 128 with values in percent): converted to a 0-1 fraction
    m = sp.read(_write(tmp_path / "t.spc", x, [100 * 10 ** -a], ytype=128))
    assert m.attrs["acquisition"]["y_kind"] == "transmittance" and m.attrs["acquisition"]["y_scale"] == "percent"
    np.testing.assert_allclose(-np.log10(m.values[::-1]), a, atol=1e-5)
    # micrometre axis (fxtype 2) -> wavenumbers ascending
    um = 1e4 / x
    m2 = sp.read(_write(tmp_path / "um.spc", um, [a], xtype=2, even=False))     # an XY file: x not even
    np.testing.assert_allclose(m2.coords["wavenumber"].values, x[::-1], rtol=1e-6)
    assert any("micrometres" in n for n in m2.attrs["acquisition"]["reader_notes"])
    # XY subfiles (own x arrays) and several subfiles: choose one, told how many
    p3 = _write(tmp_path / "multi.spc", x, [a, 2 * a, 3 * a], even=False)
    m3 = sp.read(p3, subfile=2)
    np.testing.assert_allclose(m3.values[::-1], 3 * a, rtol=1e-6)
    assert any("3 subfiles" in n for n in m3.attrs["acquisition"]["reader_notes"])
    # arbitrary y type: absorbance assumed and said so (the fit's warnings carry reader notes)
    m4 = sp.read(_write(tmp_path / "arb.spc", x, [a], ytype=0))
    assert m4.attrs["acquisition"]["y_kind"] == "absorbance"
    r = sp.ftir.fit_bands(m4, {"b": 1500}, region=(1300, 1700))
    assert r.quantities["b.center_cm1"].value == pytest.approx(1500, abs=0.3)
    assert any("arbitrary" in w for w in r.warnings)
    assert sp.read(p3, subfile=0, y_kind="transmittance").attrs["acquisition"]["y_kind"] == "transmittance"


def test_bad_spc_files(tmp_path):
    x = np.linspace(4000, 400, 200)
    good = _write(tmp_path / "g.spc", x, [np.ones(200) * 0.5]).read_bytes()
    cases = {
        "empty.spc": (b"", "empty"),
        "short.spc": (good[:300], "truncated"),
        "cut.spc": (good[:700], "truncated or corrupt"),
        "old.spc": (good[:1] + b"\x4d" + good[2:], "old .*not supported.*JCAMP-DX"),
        "msb.spc": (good[:1] + b"\x4c" + good[2:], "MSB.*not supported"),
        "notspc.spc": (b"\x00\x99" + good[2:], "not an SPC file"),
    }
    for name, (data, msg) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ReaderError, match=msg) as info:
            sp.read(p, reader="spc")
        assert name in str(info.value)
    nan = np.full(200, 0.5)
    nan[50] = np.nan
    with pytest.raises(ReaderError, match="NaN"):
        sp.read(_write(tmp_path / "nan.spc", x, [nan]))
    with pytest.raises(ReaderError, match="subfile 3 requested, the file holds 1"):
        sp.read(tmp_path / "g.spc", subfile=3)
    with pytest.raises(ReaderError, match="Raman"):
        sp.read(_write(tmp_path / "raman.spc", x, [np.ones(200)], xtype=13))
    with pytest.raises(ReaderError, match="looks like %T"):
        sp.read(_write(tmp_path / "pct.spc", x, [np.full(200, 80.0)], ytype=2))
    with pytest.raises(ReaderError, match="y_kind"):
        sp.read(tmp_path / "g.spc", y_kind="counts")
    assert not (tmp_path / "g.spc.nc").exists()
