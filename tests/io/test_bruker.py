"""Bruker reader: real TopSpin/XWIN-NMR folders (MANIFEST facts), synthetic round trips, sample data, bad input."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.io.bruker import BrukerReader
from specproc.testing.nmr_synth import add_digital_filter_delay, magnitude_spectrum, write_bruker_experiment

ng = pytest.importorskip("nmrglue")


def tallest_ppm(m, row=-1):
    """Tallest point of the magnitude FFT of the FID, exactly as realdata/MANIFEST.md describes
    (rm_dig_filter, zero-fill to 2x next power of two, fftshift(fft), reversed, f = linspace(+SW/2, -SW/2))."""
    a = m.attrs["acquisition"]
    fid = np.asarray(m.values)
    fid = fid[row] if fid.ndim == 2 else fid
    fid = ng.bruker.rm_dig_filter(fid, a["decim"], a["dspfvs"], a["grpdly"] or 0)
    n = 2 * 2 ** int(np.ceil(np.log2(fid.size)))
    spec = np.abs(np.fft.fftshift(np.fft.fft(fid, n)))[::-1]
    f = np.linspace(a["sw_hz"] / 2, -a["sw_hz"] / 2, n, endpoint=False)
    ppm = ((a["sfo1_mhz"] - a["sf_mhz"]) * 1e6 + f) / a["sf_mhz"]
    return ppm[np.argmax(spec)]


# ----------------------------------------------------------------------------- real data
REAL = {
    "topspin_1d_1H_MAS/1": dict(nucleus="1H", sfo1=500.0731174, bf1=500.07, sf=500.071553859985, sr=1553.86,
                                o1=3117.4, sw=250000, td=24974, masr=5000, decim=80, dspfvs=21, grpdly=76,
                                pulprog="zg.lcs", ns=16, shape=(12487,), tallest=0.808),
    "alginate_13C_CP/80": dict(nucleus="13C", sfo1=100.66805215095, bf1=100.663059, sf=100.661801599976,
                               sr=-1257.4, o1=4993.15094999986, sw=40322.5806451613, td=4026, masr=0, decim=4,
                               dspfvs=10, grpdly=None, pulprog="cpF1F2hetcor", ns=8192, shape=(2013,),
                               tallest=70.212),
    "dnp_29Si_CP_satrec/100": dict(nucleus="29Si", sfo1=158.84896602, bf1=158.877894, sf=158.854378039062,
                                   sr=-23515.961, o1=-28927.98, sw=156250, td=4096, masr=5000, decim=128,
                                   dspfvs=20, grpdly=67.9814453125, pulprog="cp3lev_satrec.aarz", ns=128,
                                   shape=(9, 2048), tallest=-103.469),
}


@pytest.mark.parametrize("rel", sorted(REAL))
def test_real_bruker_fid(realdata, rel):
    f = REAL[rel]
    m = sp.read(realdata / "nmr" / rel)
    a = m.attrs["acquisition"]
    assert m.attrs["technique"] == "nmr" and m.attrs["signal_type"] == "fid"
    assert m.attrs["provenance"]["reader"] == "bruker"
    assert m.attrs["nucleus"] == f["nucleus"]
    assert a["sfo1_mhz"] == pytest.approx(f["sfo1"], abs=1e-9)
    assert a["bf1_mhz"] == pytest.approx(f["bf1"], abs=1e-9)
    assert a["sf_mhz"] == pytest.approx(f["sf"], abs=1e-9)
    assert a["sr_hz"] == pytest.approx(f["sr"], abs=0.01)
    assert a["o1_hz"] == pytest.approx(f["o1"], abs=1e-6)
    assert a["sw_hz"] == pytest.approx(f["sw"], rel=1e-12)
    assert a["td"] == f["td"] and a["mas_rate_hz"] == f["masr"]
    assert a["decim"] == f["decim"] and a["dspfvs"] == f["dspfvs"]
    assert a["grpdly"] == (None if f["grpdly"] is None else pytest.approx(f["grpdly"]))
    assert a["pulprog"] == f["pulprog"] and a["ns"] == f["ns"]
    assert a["carrier_ppm"] == pytest.approx((f["sfo1"] - f["sf"]) * 1e6 / f["sf"])
    assert m.shape == f["shape"]
    assert np.iscomplexobj(m.values)
    assert m.dims[-1] == "time" and m.coords["time"].attrs["units"] == "s"
    assert m.coords["time"].values[1] == pytest.approx(1 / f["sw"])
    assert tallest_ppm(m) == pytest.approx(f["tallest"], abs=0.05)
    json.dumps(m.attrs)  # metadata must be JSON-friendly


def test_real_pseudo2d_rows_from_vdlist(realdata):
    m = sp.read(realdata / "nmr" / "dnp_29Si_CP_satrec/100")
    assert m.dims == ("row", "time")
    np.testing.assert_allclose(m.coords["row"].values, [1, 2, 3, 5, 7, 10, 15, 20, 50])
    assert m.coords["row"].attrs["units"] == "s"
    assert m.attrs["sample"] == "29Si DNP_Y64_550C"
    assert m.attrs["original_metadata"]["acqu2s"]["NUC1"] == "1H"


def test_real_sample_names(realdata):
    assert sp.read(realdata / "nmr" / "topspin_1d_1H_MAS/1").attrs["sample"] == "BEA_TPA"  # pdata/1/title
    # no title: the dataset folder + experiment number (CP/80..94 must not all be called "CP")
    assert sp.read(realdata / "nmr" / "alginate_13C_CP/80").attrs["sample"] == "alginate_13C_CP_80"


def test_experiments_without_title_have_distinct_names(tmp_path, realdata):
    for expno in ("80", "81"):
        shutil.copytree(realdata / "nmr" / "alginate_13C_CP/80", tmp_path / "CP" / expno)
    names = {sp.read(tmp_path / "CP" / e).attrs["sample"] for e in ("80", "81")}
    assert names == {"CP_80", "CP_81"}


def test_latin1_acqus_is_readable(tmp_path, realdata):
    """An acqus written in Latin-1 (``##OWNER= José``) reads; the data equal nmrglue's."""
    import nmrglue as ng

    exp = tmp_path / "80"
    shutil.copytree(realdata / "nmr" / "alginate_13C_CP/80", exp)
    raw = (exp / "acqus").read_bytes()
    raw = re.sub(rb"##OWNER=[^\n]*", "##OWNER= José".encode("latin-1"), raw)
    (exp / "acqus").write_bytes(raw)
    m = sp.read(exp)
    assert "José" in str(m.attrs["original_metadata"]["acqus"]["_coreheader"])
    _, ref = ng.bruker.read(str(realdata / "nmr" / "alginate_13C_CP/80"), read_pulseprogram=False)
    np.testing.assert_array_equal(m.values, np.asarray(ref)[: m.size])


@pytest.mark.parametrize("how", ["option", "pdata_folder"])
def test_real_processed_1r(realdata, how):
    exp = realdata / "nmr" / "topspin_1d_1H_MAS/1"
    m = sp.read(exp, pdata=1) if how == "option" else sp.read(exp / "pdata" / "1")
    x = m.coords["shift"].values
    assert m.attrs["signal_type"] == "spectrum" and m.dims == ("shift",)
    assert m.coords["shift"].attrs["units"] == "ppm"
    assert m.shape == (16384,)
    assert x[0] == pytest.approx(253.091, abs=1e-3) and x[-1] == pytest.approx(-246.807, abs=1e-3)
    assert x[np.argmax(m.values.real)] == pytest.approx(0.808, abs=0.005)
    assert np.iscomplexobj(m.values)  # 1i present
    assert m.attrs["acquisition"]["sf_mhz"] == pytest.approx(500.071553859985)


def test_real_fid_file_path_and_guess(realdata):
    exp = realdata / "nmr" / "topspin_1d_1H_MAS/1"
    r = BrukerReader()
    assert r.guess_can_open(exp) and r.guess_can_open(exp / "fid") and r.guess_can_open(exp / "pdata" / "1")
    assert not r.guess_can_open(exp / "acqus") and not r.guess_can_open(exp.parent)
    assert sp.read(exp / "fid").shape == (12487,)


def test_real_pdata_without_1r_is_error(realdata):
    with pytest.raises(ReaderError, match="1r"):
        sp.read(realdata / "nmr" / "alginate_13C_CP/80", pdata=1)


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_reading_writes_nothing_into_input_folders(realdata):
    root = realdata / "nmr"
    before = _snapshot(root)
    for rel in REAL:
        sp.read(root / rel)
    sp.read(root / "topspin_1d_1H_MAS/1", pdata=1)
    sp.read(root / "varian_87Rb_satrec2D.fid")
    assert _snapshot(root) == before


# ----------------------------------------------------------------------------- synthetic round trip
COMPS = [
    dict(name="A", center_ppm=-44.3, fwhm_ppm=1.6, area_fraction=0.5, fraction_lorentz=0.6,
         sidebands={-1: 0.1, 1: 0.1}),
    dict(name="B", center_ppm=-25.5, fwhm_ppm=3.0, area_fraction=0.3, fraction_lorentz=0.4),
    dict(name="C", center_ppm=23.6, fwhm_ppm=6.0, area_fraction=0.2, fraction_lorentz=0.3),
]


@pytest.mark.parametrize("grpdly,dspfvs", [(76.0, 21), (67.9814453125, 20)])
def test_synthetic_round_trip_peaks(tmp_path, grpdly, dspfvs):
    exp = tmp_path / "Synth_11B" / "1"
    info = write_bruker_experiment(exp, COMPS, nucleus="11B", bf1_mhz=128.38, sw_hz=100_000.0, td=8192,
                                   carrier_ppm=-10.0, mas_rate_hz=12_500.0, snr=150, phase0_deg=25.0,
                                   grpdly=grpdly, dspfvs=dspfvs, decim=16, sample="Synth", seed=3)
    m = sp.read(exp)
    a = m.attrs["acquisition"]
    assert m.attrs["sample"] == "Synth" and m.attrs["nucleus"] == "11B"
    assert a["grpdly"] == pytest.approx(grpdly) and a["mas_rate_hz"] == 12_500.0
    assert a["sfo1_mhz"] == pytest.approx(info["sfo1_mhz"], abs=1e-7) and a["sf_mhz"] == 128.38
    # the raw data really carry the filter delay: the first GRPDLY points are ~0, the echo top is later
    assert np.argmax(np.abs(m.values)) == pytest.approx(grpdly, abs=2)
    # remove the filter with the stored numbers, undo the
    # zero-order phase and look at the absorption spectrum: maxima sit on the true centres
    # (a magnitude spectrum would shift them by the neighbours' dispersive tails)
    fid = ng.bruker.rm_dig_filter(m.values, a["decim"], a["dspfvs"], a["grpdly"])
    # nmrglue removes floor(GRPDLY) points; undo the fractional rest (a pure first-order phase)
    fid = add_digital_filter_delay(fid, -(a["grpdly"] - np.floor(a["grpdly"])))
    n = 65536  # 1.5 Hz = 0.012 ppm grid
    spec = np.fft.fftshift(np.fft.ifft(fid, n))
    # zero-order phase (25 deg written): make the integral real
    spec = (spec * np.exp(-1j * np.angle(spec.sum()))).real
    f = np.linspace(a["sw_hz"] / 2, -a["sw_hz"] / 2, n, endpoint=False)
    ppm = ((a["sfo1_mhz"] - a["sf_mhz"]) * 1e6 + f) / a["sf_mhz"]
    def top(center, half_width):
        """Centroid of the points above 80 % of the local maximum (noise-robust peak position)."""
        win = np.abs(ppm - center) < half_width
        x, y = ppm[win], spec[win]
        sel = y > 0.8 * y.max()
        return float(np.sum(x[sel] * y[sel]) / np.sum(y[sel]))

    for c in COMPS:
        assert top(c["center_ppm"], c["fwhm_ppm"]) == pytest.approx(c["center_ppm"], abs=0.05), c["name"]
    for k in (-1, 1):  # sidebands of A at +-12.5 kHz
        sb = -44.3 + k * 12_500.0 / 128.38
        assert top(sb, 1.6) == pytest.approx(sb, abs=0.05)


# ----------------------------------------------------------------------------- sample data
def _sample_truth(repo_root):
    f = repo_root / "sample_data" / "nmr" / "truth.json"
    if not f.is_file():
        pytest.skip("sample_data/nmr not generated")
    return json.loads(f.read_text())


def test_sample_data_bruker_folders_match_truth(repo_root):
    truth = _sample_truth(repo_root)
    folders = {k: t for k, t in truth.items() if t["format"] == "bruker"}
    assert len(folders) == 15
    for key, t in folders.items():
        m = sp.read(repo_root / "sample_data" / "nmr" / t["path"])
        a = m.attrs["acquisition"]
        assert m.attrs["signal_type"] == "fid", key
        assert m.attrs["nucleus"] == t["nucleus"], key
        assert m.attrs["sample"] == t["sample"], key
        assert a["sf_mhz"] == pytest.approx(t["sf_mhz"]), key
        assert a["mas_rate_hz"] == pytest.approx(t["mas_rate_hz"]), key
        assert sum(c["area_fraction"] for c in t["components"]) == pytest.approx(1.0)
        ppm, spec = magnitude_spectrum(ng.bruker.rm_dig_filter(m.values, a["decim"], a["dspfvs"], a["grpdly"]),
                                       sfo1_mhz=a["sfo1_mhz"], sf_mhz=a["sf_mhz"], sw_hz=a["sw_hz"])
        # the tallest point sits on one of the two tallest sites by area/FWHM (a quadrupolar site's
        # horned line is taller than that, and its maximum is at max_ppm, not at its isotropic shift)
        tall = sorted(t["components"], key=lambda c: -c["area_fraction"] / c["fwhm_ppm"])[:2]
        top_ppm = ppm[np.argmax(spec)]
        assert any(abs(top_ppm - c.get("max_ppm", c["center_ppm"])) < c["fwhm_ppm"] for c in tall), (key, top_ppm)


# ----------------------------------------------------------------------------- bad input
@pytest.fixture
def small_exp(tmp_path):
    exp = tmp_path / "Bad_1H" / "1"
    write_bruker_experiment(exp, COMPS[:1], nucleus="1H", bf1_mhz=400.13, sw_hz=50_000.0, td=2048, snr=100,
                            sample="Bad", seed=1)
    return exp


def _edit_acqus(exp: Path, key: str, value: str | None):
    f = exp / "acqus"
    text = f.read_text()
    pat = re.compile(rf"^##\${re.escape(key)}=.*$\n", re.M)
    assert pat.search(text)
    f.write_text(pat.sub("" if value is None else f"##${key}= {value}\n", text))


def test_missing_folder(tmp_path):
    with pytest.raises(ReaderError, match="not found") as e:
        sp.read(tmp_path / "nope" / "1", reader="bruker")
    assert "nope" in str(e.value)


def test_folder_without_acqus(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ReaderError, match="acqus"):
        BrukerReader().read(tmp_path / "x")


@pytest.mark.parametrize("cut", [3, 1024])
def test_truncated_fid(small_exp, cut):
    fid = small_exp / "fid"
    data = fid.read_bytes()
    fid.write_bytes(data[:-cut])
    with pytest.raises(ReaderError, match="truncated") as e:
        sp.read(small_exp)
    assert str(fid) in str(e.value) or "fid" in str(e.value)


@pytest.mark.parametrize("key,value,match", [
    ("SFO1", None, "SFO1 is missing"), ("SFO1", "abc", "SFO1"), ("SW_h", None, "SW_h is missing"),
    ("TD", "x1", "TD"), ("SW_h", "0", "spectral width"), ("SFO1", "5000", "SFO1"), ("SFO1", "-3", "SFO1"),
    ("TD", "0", "TD"),
])
def test_corrupt_or_absurd_acqus(small_exp, key, value, match):
    _edit_acqus(small_exp, key, value)
    with pytest.raises(ReaderError, match=match) as e:
        sp.read(small_exp)
    assert "acqus" in str(e.value)


def test_garbage_acqus(small_exp):
    (small_exp / "acqus").write_text("this is not a parameter file\n")
    with pytest.raises(ReaderError, match="acqus"):
        sp.read(small_exp)


def test_missing_fid_and_no_pdata(small_exp):
    (small_exp / "fid").unlink()
    with pytest.raises(ReaderError, match="no fid or ser"):
        BrukerReader().read(small_exp)


def test_synthetic_pdata_only_procs(small_exp):
    with pytest.raises(ReaderError, match="1r"):
        sp.read(small_exp, pdata=1)
    with pytest.raises(ReaderError, match="pdata/2"):
        sp.read(small_exp, pdata=2)


def test_synthetic_ser_without_vdlist(tmp_path, small_exp):
    """A ser built from two copies of the fid reads as ("row", "time") with an index row axis."""
    exp = tmp_path / "ser_exp"
    shutil.copytree(small_exp, exp)
    fid = (exp / "fid").read_bytes()
    (exp / "fid").unlink()
    (exp / "ser").write_bytes(fid + fid)
    acqu2s = (exp / "acqus").read_text().replace("##$TD= 2048", "##$TD= 2")
    (exp / "acqu2s").write_text(acqu2s)
    m = sp.read(exp)
    assert m.dims == ("row", "time") and m.shape == (2, 1024)
    np.testing.assert_array_equal(m.values[0], m.values[1])
    np.testing.assert_array_equal(m.coords["row"].values, [0, 1])
    (exp / "ser").write_bytes(fid + fid[:100])
    with pytest.raises(ReaderError, match="truncated"):
        sp.read(exp)
