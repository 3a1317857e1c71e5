"""EMSA/MSA and HyperSpy (.hspy/.zspy) readers (RosettaSciIO) on the sample data; bad input."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError, SpecprocError
from specproc.testing.contract import ReaderContract

DATA = Path(__file__).resolve().parents[2] / "sample_data" / "eels"


class TestMsaReader(ReaderContract):
    reader = "msa"
    truncation_fails = False  # a text file cut between lines is a shorter, still valid spectrum

    def good_files(self):
        return [DATA / "LiBH4_BK.msa", DATA / "LiBH4-70LiNBH_lowloss.msa"]


class TestHyperSpyReader(ReaderContract):
    reader = "hyperspy"

    def good_files(self):
        return [DATA / "LiBH4_BK.hspy", DATA / "SI_LiBH4-70LiNBH_16x16.hspy"]


def test_msa_and_hspy_carry_axis_and_acquisition():
    truth = json.loads((DATA / "truth.json").read_text())
    a, b = sp.read(DATA / "LiBH4_BK.msa"), sp.read(DATA / "LiBH4_BK.hspy")
    for m in (a, b):
        assert m.dims == ("energy",) and m.shape == (1024,) and m.attrs["technique"] == "eels"
        assert m.energy.attrs["units"] == "eV"
        assert m.energy.values[0] == pytest.approx(truth["energy_axis_eV"][0])
        acq = m.attrs["acquisition"]
        assert acq["beam_energy_keV"] == truth["acquisition"]["beam_energy"]
        assert acq["collection_angle_mrad"] == truth["acquisition"]["collection_angle"]
        assert acq["convergence_angle_mrad"] == truth["acquisition"]["convergence_angle"]
        assert acq["dispersion_eV"] == pytest.approx(0.1)
        assert m.attrs["sample"] == "LiBH4"
    np.testing.assert_allclose(a.values, b.values)
    assert a.attrs["provenance"]["reader"] == "msa" and b.attrs["provenance"]["reader"] == "hyperspy"


def test_hspy_spectrum_image_axes():
    m = sp.read(DATA / "SI_LiBH4-70LiNBH_16x16.hspy")
    assert m.dims == ("y", "x", "energy") and m.shape == (16, 16, 1024)
    assert m.x.attrs["units"] == "nm" and m.x.values[1] - m.x.values[0] == pytest.approx(2.0)
    assert m.attrs["signal_type"] == "spectrum_image"


def test_bad_msa(tmp_path):
    good = (DATA / "LiBH4_BK.msa").read_text(encoding="latin-1")
    p = tmp_path / "garbage.msa"
    p.write_text("hello\nworld\n")
    with pytest.raises(ReaderError, match="garbage.msa"):
        sp.read(p, reader="msa")
    p = tmp_path / "eds.msa"
    p.write_text(good.replace("#SIGNALTYPE  : ELS", "#SIGNALTYPE  : EDS_TEM"))
    with pytest.raises(ReaderError, match="not EELS"):
        sp.read(p)
    p = tmp_path / "nan.msa"
    lines = good.splitlines()
    i = lines.index("#SPECTRUM    : Spectral Data Starts Here")
    lines[i + 5] = "nan, "
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecprocError, match="nan.msa"):
        sp.read(p)
    p = tmp_path / "nodata.msa"
    p.write_text("\n".join(lines[:i + 1]) + "\n#ENDOFDATA   : \n")
    with pytest.raises(SpecprocError, match="nodata.msa"):
        sp.read(p)


def test_bad_hspy(tmp_path):
    p = tmp_path / "fake.hspy"
    p.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(ReaderError, match="HDF5"):
        sp.read(p, reader="hyperspy")
    src = (DATA / "LiBH4_BK.hspy").read_bytes()
    p = tmp_path / "trunc.hspy"
    p.write_bytes(src[: len(src) // 3])
    with pytest.raises(ReaderError, match="trunc.hspy"):
        sp.read(p)
    z = tmp_path / "x.zspy"
    z.mkdir()
    with pytest.raises(ReaderError, match="x.zspy"):
        sp.read(z, reader="hyperspy")


def test_zspy_round_trip_written_by_hyperspy(tmp_path):
    """A .zspy (Zarr) file written by HyperSpy reads back with its energy axis and the same π*."""
    import warnings

    hs = pytest.importorskip("hyperspy.api")
    pytest.importorskip("zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = hs.load(DATA / "LiBH4_BK.hspy")
        s.save(tmp_path / "x.zspy")
    a = sp.read(DATA / "LiBH4_BK.hspy")
    z = sp.read(tmp_path / "x.zspy")
    assert z.dims == a.dims and z.coords["energy"].attrs["units"] == "eV"
    np.testing.assert_allclose(z.values, a.values)
    np.testing.assert_allclose(z.coords["energy"].values, a.coords["energy"].values)


@pytest.mark.parametrize("edit, said", [
    (lambda t: re.sub(r"#XUNITS.*\n", "", t), "missing"),
    (lambda t: re.sub(r"#XUNITS.*\n", "#XUNITS      : \n", t), "empty"),
    (lambda t: re.sub(r"#XUNITS.*\n", "#XUNITS      : <undefined>\n", t), "'<undefined>'"),
    (lambda t: re.sub(r"#XLABEL.*\n", "", re.sub(r"#XUNITS.*\n", "", t)), "missing"),
])
def test_missing_or_undefined_units_are_assumed_ev_and_said(tmp_path, edit, said):
    """An EELS file without x units (EELS Data Base style) gives the same spectrum as with
    ``#XUNITS : eV``, and the assumption is written in reader_notes with the range."""
    good = (DATA / "LiBH4_BK.msa").read_text(encoding="latin-1")
    ref = sp.read(DATA / "LiBH4_BK.msa")
    p = tmp_path / "no_units.msa"
    p.write_text(edit(good), encoding="latin-1")
    m = sp.read(p)
    np.testing.assert_array_equal(m.values, ref.values)
    np.testing.assert_array_equal(m.energy.values, ref.energy.values)
    assert m.energy.attrs["units"] == "eV"
    acq = m.attrs["acquisition"]
    assert acq["x_units_assumed"] == "eV"
    note = " ".join(acq["reader_notes"])
    assert f"units {said}" in note and "assumed eV" in note and "150-252.3 eV" in note
    assert "reader_notes" not in ref.attrs["acquisition"] or not ref.attrs["acquisition"]["reader_notes"]


def test_unit_less_file_without_eels_evidence_is_refused_and_can_be_forced(tmp_path):
    good = (DATA / "LiBH4_BK.msa").read_text(encoding="latin-1")
    bare = re.sub(r"#(XUNITS|XLABEL|SIGNALTYPE).*\n", "", good)
    p = tmp_path / "bare.msa"
    p.write_text(bare, encoding="latin-1")
    with pytest.raises(ReaderError, match=r"bare.msa: no #XUNITS and nothing in the header says energy loss"):
        sp.read(p)
    m = sp.read(p, x_units="eV")   # the user knows
    np.testing.assert_array_equal(m.energy.values, sp.read(DATA / "LiBH4_BK.msa").energy.values)
    assert "given as eV (x_units)" in m.attrs["acquisition"]["reader_notes"][0]
    q = tmp_path / "nm.msa"
    q.write_text(re.sub(r"#XUNITS.*\n", "#XUNITS      : nm\n", good), encoding="latin-1")
    with pytest.raises(ReaderError, match="x axis in 'nm': not an energy"):
        sp.read(q)
