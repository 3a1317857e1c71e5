"""Gatan DM3/DM4 reader (RosettaSciIO): MANIFEST facts of the real files, contract, bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.testing.contract import ReaderContract

EELS = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "eels"


def _need(name):
    p = EELS / name
    if not p.exists():
        pytest.skip(f"{p} not available")
    return p


class TestGatanReader(ReaderContract):
    reader = "gatan"

    def good_files(self):
        return [EELS / "EELS_STO.dm3", EELS / "EELS_SI.dm4"]


def test_sto_dm3_manifest():
    m = sp.read(_need("EELS_STO.dm3"))
    assert m.dims == ("energy",) and m.shape == (2048,) and m.dtype == np.float32
    E = m.energy.values
    assert m.energy.attrs["units"] == "eV"
    assert E[0] == pytest.approx(350.0) and E[1] - E[0] == pytest.approx(0.25) and E[-1] == pytest.approx(861.75)
    acq = m.attrs["acquisition"]
    assert acq["beam_energy_keV"] == pytest.approx(200.0)
    assert acq["collection_angle_mrad"] == pytest.approx(33.0)
    assert acq["convergence_angle_mrad"] == pytest.approx(30.0)
    assert acq["exposure_s"] == pytest.approx(20.0) and acq["frame_number"] == 10
    assert acq["acquisition_mode"] == "STEM" and acq["spectrometer"] == "Enfinium ER NION"
    assert acq["dispersion_eV"] == pytest.approx(0.25)
    assert m.attrs["sample"] == "01-EELS Acquire_STO" and m.attrs["date"] == "2019-12-14"
    y = m.values.astype(float)
    assert y.sum() == pytest.approx(162759720.0, rel=1e-6)
    assert y.max() == 235408.0 and E[np.argmax(y)] == pytest.approx(461.25) and y.min() == 21983.0
    assert m.attrs["provenance"]["sha256"] == "aa24012809d4f817c3ce212af12eee5f5a987516124b376ffa618b39321335ce"


@pytest.mark.parametrize("fit_win, search, expected", [((400, 450), (450, 475), 461.25),
                                                        ((500, 525), (528, 560), 529.75)])
def test_sto_power_law_net_max(fit_win, search, expected):
    """MANIFEST 'power-law net max' rule with specproc's pre-edge background fit (±1 channel)."""
    from specproc.techniques.eels.background import fit_background

    m = sp.read(_need("EELS_STO.dm3"))
    E, y = m.energy.values, m.values.astype(float)[None, :]
    bg = fit_background(E, y, fit_win)
    net = y[0] - bg.evaluate(E)[0]
    sel = (E >= search[0]) & (E <= search[1])
    assert E[sel][np.argmax(net[sel])] == pytest.approx(expected, abs=0.25 + 1e-9)


def test_al_lowloss_dm3_manifest():
    from specproc.techniques.eels.fit import zero_loss_centre

    m = sp.read(_need("AL-DFoffset0.00.dm3"))
    E = m.energy.values
    assert m.shape == (2048,) and E[0] == pytest.approx(-3.6092472976966974)
    assert E[1] - E[0] == pytest.approx(0.0201262179762125)
    acq = m.attrs["acquisition"]
    assert acq["beam_energy_keV"] == pytest.approx(199.99028125) and acq["acquisition_mode"] == "TEM"
    assert acq["collection_angle_mrad"] == pytest.approx(100.0)
    assert acq["exposure_s"] == pytest.approx(10.0) and acq["frame_number"] == 100
    assert m.attrs["instrument"] == "Libra COM" and m.attrs["date"] == "2018-10-01"
    y = m.values.astype(float)
    assert y.sum() == pytest.approx(4875544752.18, rel=1e-6) and y.min() == pytest.approx(-20441.23, abs=0.01)
    assert E[np.argmax(y)] == pytest.approx(-0.1274, abs=1e-3)
    plas = (E >= 5) & (E <= 30)
    assert E[plas][np.argmax(y[plas])] == pytest.approx(14.907, abs=1e-3)
    c, se, fwhm = zero_loss_centre(m)  # Gaussian top of the ZLP: within one channel of the maximum
    assert c == pytest.approx(-0.1274, abs=0.0202) and se is not None and 0 < fwhm < 2


def test_si_dm4_manifest():
    m = sp.read(_need("EELS_SI.dm4"))
    assert m.dims == ("y", "x", "energy") and m.shape == (2, 2, 2048) and m.dtype == np.float32
    assert m.attrs["signal_type"] == "spectrum_image"
    for d in ("y", "x"):
        assert m[d].attrs["units"] == "um"
        assert m[d].values[1] - m[d].values[0] == pytest.approx(0.0019920736085623503)
    E = m.energy.values
    assert E[0] == pytest.approx(300.0) and E[1] - E[0] == pytest.approx(1.0) and E[-1] == pytest.approx(2347.0)
    assert m.attrs["acquisition"]["beam_energy_keV"] == pytest.approx(200.0)
    assert m.attrs["instrument"] == "FEI Titan"
    s = m.values.astype(float).sum(axis=(0, 1))
    assert s.sum() == pytest.approx(7169069.07, rel=1e-6)
    assert s.max() == pytest.approx(32791.61, abs=0.01) and E[np.argmax(s)] == pytest.approx(302.0)
    assert s.min() == pytest.approx(71.34, abs=0.01)
    means = [s[(E >= lo) & (E <= hi)].mean() / 4 for lo, hi in ((300, 363), (1772, 1835), (1836, 1899), (1900, 1963))]
    assert means == pytest.approx([6527.8, 58.1, 77.4, 93.7], abs=0.1)  # Si K edge at ~1839 eV


def test_bad_dm_files(tmp_path):
    src = _need("EELS_STO.dm3")
    trunc = tmp_path / "trunc.dm3"
    trunc.write_bytes(src.read_bytes()[:5000])
    with pytest.raises(ReaderError, match="trunc.dm3"):
        sp.read(trunc)
    junk = tmp_path / "junk.dm4"
    junk.write_bytes(b"\x00\x00\x00\x04" + b"garbage" * 50)
    with pytest.raises(ReaderError, match="junk.dm4"):
        sp.read(junk, reader="gatan")
    text = tmp_path / "text.dm3"
    text.write_text("not a dm file")
    with pytest.raises(ReaderError, match="DM3/DM4"):
        sp.read(text, reader="gatan")
    empty = tmp_path / "empty.dm3"
    empty.write_bytes(b"")
    with pytest.raises(ReaderError, match="empty"):
        sp.read(empty, reader="gatan")
