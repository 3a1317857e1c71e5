"""VAMAS reader: real files (MANIFEST facts), synthetic depth profiles, quirks and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from specproc.core.errors import ReaderError
from specproc.io.vamas import VamasReader
from specproc.testing.xps_synth import write_vamas

R = VamasReader()


def _region(m, name):
    sel = m.coords["region"].values == name
    return m.coords["binding_energy"].values[sel], m.values[:, sel]


# --------------------------------------------------------------------------- real files (MANIFEST.md, xps)
def test_multipak_npl(realdata):
    p = realdata / "xps" / "Mutlipak_vms.npl"
    assert R.guess_can_open(p)
    m = R.read(p)
    assert m.dims == ("level", "channel") and m.sizes["level"] == 1
    acq = m.attrs["acquisition"]
    assert acq["source_energy_eV"] == pytest.approx(1486.6)
    assert acq["pass_energy_eV"] == pytest.approx(46.95)
    assert acq["work_function_eV"] == pytest.approx(4.19)
    assert m.attrs["instrument"] == "PHI VersaProbe II"
    assert m.attrs["units"] == "counts/s"
    facts = {"C 1s": (305.0, 601, 6265.0, 284.85), "O 1s": (555.0, 601, 4627.5, 531.60),
             "S 2p": (180.0, 501, 2025.0, 161.40), "N 1s": (410.0, 401, 3680.0, 399.25),
             "Mo 3d": (240.0, 401, 4206.25, 228.45)}
    assert list(dict.fromkeys(m.coords["region"].values)) == list(facts)  # NUL stripped from '1s\x00'
    for reg, (start, n, ymax, bemax) in facts.items():
        x, Y = _region(m, reg)
        assert x.size == n and x[0] == pytest.approx(start)
        assert np.diff(x) == pytest.approx(np.full(n - 1, -0.05), abs=1e-9)
        assert Y[0].max() == pytest.approx(ymax)
        assert x[np.argmax(Y[0])] == pytest.approx(bemax, abs=1e-6)


def test_regular_kinetic_energy(realdata):
    m = R.read(realdata / "xps" / "regular.vms")
    acq = m.attrs["acquisition"]
    assert acq["energy_axis_in_file"] == "kinetic"
    assert acq["source_energy_eV"] == pytest.approx(1486.61)
    assert acq["work_function_eV"] == pytest.approx(4.1082)
    assert acq["pass_energy_eV"] == pytest.approx(100.0) and acq["analyser_mode"] == "FAT"
    assert m.attrs["sample"] == "1 as-loaded"
    ke = m.coords["kinetic_energy"].values
    y = m.values[0]
    assert ke.size == 1351 and ke[0] == pytest.approx(136.61) and ke[-1] == pytest.approx(1486.61)
    assert y.max() == pytest.approx(10836.6) and y.min() == pytest.approx(18.1529)
    assert ke[np.argmax(y)] == pytest.approx(1180.61)
    # BE = source - KE - work function (MANIFEST's apparent BE 306.0 is without the work function)
    be = m.coords["binding_energy"].values[np.argmax(y)]
    assert be == pytest.approx(306.0 - 4.1082, abs=1e-6)
    assert R.read(realdata / "xps" / "regular.vms", work_function=0.0).coords["binding_energy"].values[
        np.argmax(y)] == pytest.approx(306.0, abs=1e-6)


def test_feranick_empty_labels_and_zero_blocks(realdata):
    m = R.read(realdata / "xps" / "feranick_2.vms")
    regs = list(dict.fromkeys(m.coords["region"].values))
    assert regs == [f"block {i}" for i in range(1, 7)]  # empty identifiers and labels
    facts = [(1386.6, -0.5, 2794, 22685, 1385.6), (289.0, -0.1, 81, 263170, 284.9),
             (110.0, -0.1, 151, 132127, 99.5), (15.0, -0.1, 171, 35773, 7.6)]
    for reg, (start, step, n, ymax, bemax) in zip(regs, facts):
        x, Y = _region(m, reg)
        assert (x[0], x.size) == (pytest.approx(start), n)
        assert x[1] - x[0] == pytest.approx(step)
        assert Y.max() == pytest.approx(ymax) and x[np.argmax(Y[0])] == pytest.approx(bemax)
    for reg in regs[4:]:
        assert not _region(m, reg)[1].any()  # blocks 5-6 are all zeros
    assert m.attrs["acquisition"]["source_energy_eV"] == pytest.approx(1486.6)


# --------------------------------------------------------------------------- synthetic depth profiles
def _profile(tmp_path, name="p.vms", **kw):
    be1 = np.round(np.arange(405, 395 - 1e-9, -0.1), 2)
    be2 = np.round(np.arange(292, 280 - 1e-9, -0.2), 2)
    rng = np.random.default_rng(0)
    regions = [{"species": "N", "transition": "1s", "be": be1, "Y": rng.poisson(100, (4, be1.size))},
               {"species": "C", "transition": "1s", "be": be2, "Y": rng.poisson(50, (4, be2.size))}]
    path = tmp_path / name
    write_vamas(path, regions, [0, 30, 60, 90], sample="S1", **kw)
    return path, regions


def test_depth_profile_layout(tmp_path):
    path, regions = _profile(tmp_path, sputter_rate=0.3)
    m = R.read(path)
    assert m.dims == ("level", "channel") and m.shape == (4, 101 + 61)
    assert m.etch_time.values.tolist() == [0, 30, 60, 90]
    assert m.attrs["acquisition"]["sputter_rate_nm_s"] == pytest.approx(0.3)
    assert m.attrs["acquisition"]["level_variable"] == "Etch Time"
    x, Y = _region(m, "C 1s")
    assert np.allclose(x, regions[1]["be"]) and np.array_equal(Y, regions[1]["Y"])
    assert m.attrs["signal_type"] == "profile" and m.attrs["sample"] == "S1"


def test_kinetic_axis_and_leading_blank_lines(tmp_path):
    path, regions = _profile(tmp_path, kinetic=True, work_function=4.5, leading_blank_lines=3,
                             comments=["Sputter rate = 2.5 A/s"])
    assert R.guess_can_open(path)
    m = R.read(path)
    x, Y = _region(m, "N 1s")
    assert np.allclose(x, regions[0]["be"], atol=1e-6)
    assert m.attrs["acquisition"]["energy_axis_in_file"] == "kinetic"
    assert m.attrs["acquisition"]["sputter_rate_nm_s"] == pytest.approx(0.25)  # Å/s -> nm/s


def test_levels_from_comments_and_repetition(tmp_path):
    path, _ = _profile(tmp_path, etch_variable=False)
    m = R.read(path)
    assert m.etch_time.values.tolist() == [0, 30, 60, 90]  # "Etch Time = x s" block comments
    assert m.attrs["acquisition"]["levels_from"] == "comment"


def test_npl_extension_through_sp_read(tmp_path):
    import specproc as sp

    path, _ = _profile(tmp_path, name="profile.npl")
    assert sp.read(path).attrs["technique"] == "xps"


# --------------------------------------------------------------------------- bad input
def test_truncated(tmp_path):
    path, _ = _profile(tmp_path)
    lines = path.read_text().splitlines()
    bad = tmp_path / "trunc.vms"
    bad.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    with pytest.raises(ReaderError, match="ends unexpectedly"):
        R.read(bad)


def test_block_count_mismatch(tmp_path):
    path, _ = _profile(tmp_path)
    lines = path.read_text().splitlines()
    i = lines.index("8")  # number of blocks (2 regions x 4 levels)
    for n, msg in (("9", "ends unexpectedly"), ("7", "block count mismatch")):
        bad = tmp_path / f"count{n}.vms"
        bad.write_text("\n".join(lines[:i] + [n] + lines[i + 1:]) + "\n")
        with pytest.raises(ReaderError, match=msg):
            R.read(bad)


def test_irregular_mode(tmp_path):
    path, _ = _profile(tmp_path, scan_mode="IRREGULAR")
    with pytest.raises(ReaderError, match="IRREGULAR.*only REGULAR"):
        R.read(path)


def test_not_vamas_and_empty(tmp_path):
    p = tmp_path / "x.vms"
    p.write_text("hello\n1 2\n")
    assert not R.guess_can_open(p)
    with pytest.raises(ReaderError, match="not a VAMAS"):
        R.read(p)
    e = tmp_path / "e.vms"
    e.write_text("")
    with pytest.raises(ReaderError, match="empty"):
        R.read(e)


def test_nan_values(tmp_path):
    path, _ = _profile(tmp_path)
    text = path.read_text().splitlines()
    # the first data value of the last block
    text[-3] = "nan"
    bad = tmp_path / "nan.vms"
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(ReaderError, match="NaN"):
        R.read(bad)


def test_input_untouched(tmp_path):
    path, _ = _profile(tmp_path)
    before = path.read_bytes()
    files = set(tmp_path.iterdir())
    R.read(path)
    assert path.read_bytes() == before and set(tmp_path.iterdir()) == files
