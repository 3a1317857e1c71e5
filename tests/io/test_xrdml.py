"""XRDML reader: real files (MANIFEST facts), synthetic variants, bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.io.xrdml import XrdmlReader
from specproc.testing.xrd_synth import write_xrdml

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata" / "xrd"


def real(name):
    p = REAL / name
    if not p.exists():
        pytest.skip(f"real data {p} not available")
    return p


def test_empyrean_manifest_facts():
    p = real("XRD-918-16_10.xrdml")
    assert XrdmlReader().guess_can_open(p)
    m = sp.read(p)
    tt = m.coords["two_theta"].values
    acq = m.attrs["acquisition"]
    assert m.dims == ("two_theta",) and m.size == 5027
    assert tt[0] == pytest.approx(4.00656514) and tt[-1] == pytest.approx(69.99936587)
    assert acq["step_deg"] == pytest.approx(0.01313, abs=1e-5)
    assert acq["wavelength_nm"] == pytest.approx(0.15405980) and acq["kalpha2_nm"] == pytest.approx(0.15444260)
    assert acq["kbeta_nm"] == pytest.approx(0.13922500) and acq["kalpha2_ratio"] == 0.5
    assert acq["counting_time_s"] == pytest.approx(39.27) and acq["anode"] == "Cu"
    assert acq["wavelength_source"] == "file"
    assert tt[np.argmax(m.values)] == pytest.approx(26.6169, abs=1e-3) and m.values.max() == 100168
    assert m.coords["two_theta"].attrs["units"] == "deg" and m.attrs["units"] == "counts"
    assert m.attrs["provenance"]["reader"] == "xrdml" and len(m.attrs["provenance"]["sha256"]) == 64
    assert m.attrs["original_metadata"]["xrdMeasurement"]["usedWavelength"]["ratioKAlpha2KAlpha1"] == "0.5000"


def test_empyrean_matches_xrayutilities():
    xu = pytest.importorskip("xrayutilities")
    p = real("XRD-918-16_10.xrdml")
    m = sp.read(p)
    scan = xu.io.XRDMLFile(str(p)).scan
    np.testing.assert_allclose(m.coords["two_theta"].values, scan["2Theta"], atol=1e-6)
    # xrayutilities' detector field is counts / counting time
    np.testing.assert_allclose(m.values / m.attrs["acquisition"]["counting_time_s"], scan["detector"], rtol=1e-6)


def test_omega_2theta_counts_manifest_facts():
    m = sp.read(real("simpack_xrd_AlGaAs.xrdml"))
    tt = m.coords["two_theta"].values
    acq = m.attrs["acquisition"]
    assert m.size == 2999 and tt[0] == pytest.approx(65.46) and tt[-1] == pytest.approx(66.6592)
    assert acq["step_deg"] == pytest.approx(0.0004, abs=1e-9) and acq["scan_axis"] == "Omega-2Theta"
    assert acq["kalpha2_ratio"] == 0.0 and acq["counting_time_s"] == pytest.approx(0.5)
    assert tt[np.argmax(m.values)] == pytest.approx(65.8904, abs=1e-4) and m.values.max() == 76182


def _xy(n=200):
    x = np.linspace(10, 50, n)
    return x, 100 + 1000 * np.exp(-0.5 * ((x - 30) / 0.1) ** 2)


@pytest.mark.parametrize("tag", ["counts", "intensities"])
@pytest.mark.parametrize("listed", [False, True])
def test_synthetic_variants(tmp_path, tag, listed):
    x, y = _xy()
    p = write_xrdml(tmp_path / "a.xrdml", x, y, intensity_tag=tag, use_list_positions=listed, sample="S1")
    m = sp.read(p)
    assert m.attrs["sample"] == "S1"
    np.testing.assert_allclose(m.coords["two_theta"].values, x, atol=1e-5)
    np.testing.assert_allclose(m.values, np.round(y))


def _multi(tmp_path, grids):
    x, y = _xy()
    p = write_xrdml(tmp_path / "one.xrdml", x, y)
    text = p.read_text()
    s0, s1 = text.index("<scan "), text.index("</scan>") + len("</scan>")
    scan = text[s0:s1]
    extra = []
    for g in grids[1:]:
        extra.append(scan.replace(f"<startPosition>{x[0]:.5f}</startPosition>", f"<startPosition>{g:.5f}</startPosition>", 1))
    out = tmp_path / "multi.xrdml"
    out.write_text(text[:s1] + "".join(extra) + text[s1:])
    return out


def test_multiple_scans_stack_when_grids_agree(tmp_path):
    m = sp.read(_multi(tmp_path, [10.0, 10.0, 10.0]))
    assert m.dims == ("scan", "two_theta") and m.shape == (3, 200)


def test_multiple_scans_different_grids(tmp_path):
    p = _multi(tmp_path, [10.0, 12.0])
    with pytest.warns(UserWarning, match="different 2θ grids"):
        m = sp.read(p)
    assert m.dims == ("two_theta",) and m.coords["two_theta"].values[0] == pytest.approx(10.0)
    m1 = sp.read(p, scan=1)
    assert m1.coords["two_theta"].values[0] == pytest.approx(12.0)
    with pytest.raises(ReaderError, match="scan=5"):
        sp.read(p, scan=5)


def test_default_wavelength_stated(tmp_path):
    x, y = _xy()
    p = write_xrdml(tmp_path / "a.xrdml", x, y)
    t = p.read_text()
    a, b = t.index("<usedWavelength"), t.index("</usedWavelength>") + len("</usedWavelength>")
    (tmp_path / "nowl.xrdml").write_text(t[:a] + t[b:])
    m = sp.read(tmp_path / "nowl.xrdml")
    assert m.attrs["acquisition"]["wavelength_nm"] == pytest.approx(0.15405980)
    assert m.attrs["acquisition"]["wavelength_source"] == "default"


def test_truncated_xml(tmp_path):
    x, y = _xy()
    p = write_xrdml(tmp_path / "a.xrdml", x, y)
    bad = tmp_path / "trunc.xrdml"
    bad.write_text(p.read_text()[:1500])
    with pytest.raises(ReaderError) as e:
        sp.read(bad)
    assert "trunc.xrdml" in str(e.value) and "XML" in str(e.value)


def test_omega_only_scan_rejected(tmp_path):
    x, y = _xy()
    p = write_xrdml(tmp_path / "a.xrdml", x, y)
    t = p.read_text()
    i = t.index('<positions axis="2Theta"')
    j = t.index("</positions>", i) + len("</positions>")
    (tmp_path / "omega.xrdml").write_text(
        t[:i] + '<positions axis="2Theta" unit="deg"><commonPosition>30.0</commonPosition></positions>' + t[j:])
    with pytest.raises(ReaderError, match="does not vary 2Theta.*Omega"):
        sp.read(tmp_path / "omega.xrdml")


def test_empty_data(tmp_path):
    x, y = _xy()
    p = write_xrdml(tmp_path / "a.xrdml", x, y)
    t = p.read_text()
    i = t.index('<counts unit="counts">') + len('<counts unit="counts">')
    j = t.index("</counts>")
    (tmp_path / "empty.xrdml").write_text(t[:i] + t[j:])
    with pytest.raises(ReaderError, match="empty"):
        sp.read(tmp_path / "empty.xrdml")


def test_not_sniffed_for_other_xml(tmp_path):
    p = tmp_path / "other.xml"
    p.write_text("<?xml version='1.0'?><root/>")
    assert not XrdmlReader().guess_can_open(p)
