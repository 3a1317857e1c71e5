"""Gwyddion .gwy reader: channels, SI units (prefixed units converted), scan size in m, bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.io.gwyddion import si_base, write_gwy
from specproc.testing.contract import ReaderContract

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "afm"


def _file(tmp_path, rng):
    z = rng.normal(0, 3e-9, (20, 30))
    E = rng.uniform(1e9, 5e10, (20, 30))
    path = tmp_path / "t.gwy"
    write_gwy(path, [("Height", z, "m"), ("DMT Modulus", E, "Pa")], 3e-6, 2e-6)
    return path, z, E


def test_channels_units_and_scan_size(tmp_path):
    rng = np.random.default_rng(7)
    path, z, E = _file(tmp_path, rng)
    m = sp.read(path)
    assert m.dims == ("channel", "y", "x") and m.shape == (2, 20, 30)
    assert list(m.channel.values) == ["Height", "DMT Modulus"]
    assert m.attrs["channel_units"] == ["m", "Pa"]
    np.testing.assert_array_equal(m.sel(channel="Height").values, z)
    np.testing.assert_array_equal(m.sel(channel="DMT Modulus").values, E)
    acq = m.attrs["acquisition"]
    assert acq["scan_size_x_m"] == 3e-6 and acq["scan_size_y_m"] == 2e-6
    assert m.x.attrs["units"] == "m" and m.y.attrs["units"] == "m"
    assert np.isclose(m.x.values[0], 3e-6 / 60) and np.isclose(m.x.values[-1], 3e-6 - 3e-6 / 60)
    assert m.attrs["provenance"]["reader"] == "gwyddion"
    one = sp.read(path, channel="dmt modulus")
    assert one.shape == (1, 20, 30) and one.attrs["channel_units"] == ["Pa"]


def test_prefixed_units_are_converted(tmp_path):
    z = np.ones((4, 5)) * 2.0
    path = tmp_path / "nm.gwy"
    write_gwy(path, [("Height", z, "nm"), ("Modulus", z, "GPa")], 1.0, 1.0)   # xy unit "m": 1 m scan refused
    with pytest.raises(ReaderError, match="larger than 1 cm"):
        sp.read(path)
    from gwyfile.objects import GwyContainer, GwyDataField

    c = GwyContainer()
    c["/0/data/title"] = "Height"
    c["/0/data"] = GwyDataField(z, xreal=2.0, yreal=2.0, si_unit_xy="um", si_unit_z="nm")
    c["/1/data/title"] = "Modulus"
    c["/1/data"] = GwyDataField(z, xreal=2.0, yreal=2.0, si_unit_xy="um", si_unit_z="GPa")
    c.tofile(str(path))
    m = sp.read(path)
    assert m.attrs["channel_units"] == ["m", "Pa"]
    assert np.allclose(m.values[0], 2e-9) and np.allclose(m.values[1], 2e9)
    assert np.isclose(m.attrs["acquisition"]["scan_size_x_m"], 2e-6)
    assert si_base("µm") == ("m", 1e-6) and si_base("Pa") == ("Pa", 1.0) and si_base("arb") == ("arb", 1.0)


def test_bad_input(tmp_path):
    rng = np.random.default_rng(1)
    path, _, _ = _file(tmp_path, rng)
    cut = tmp_path / "cut.gwy"
    cut.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ReaderError, match="cut.gwy"):
        sp.read(cut)
    fake = tmp_path / "fake.gwy"
    fake.write_bytes(b"hello world")
    with pytest.raises(ReaderError):
        sp.read(fake, reader="gwyddion")
    with pytest.raises(ReaderError, match="no channel 'Phase'"):
        sp.read(path, channel="Phase")
    with pytest.raises(ReaderError, match="not found"):
        sp.read(tmp_path / "missing.gwy")


def test_sample_data_files():
    for f in ("Li_vs_LiBH4.gwy", "Li_vs_LiBH4-70LiNBH.gwy"):
        m = sp.read(SAMPLE / f)
        assert m.shape == (2, 256, 256) and m.attrs["channel_units"] == ["m", "Pa"]
        assert np.isclose(m.attrs["acquisition"]["scan_size_x_m"], 5e-6)


class TestGwyddionContract(ReaderContract):
    reader = "gwyddion"

    def good_files(self):
        return [SAMPLE / "Li_vs_LiBH4-70LiNBH.gwy"]
