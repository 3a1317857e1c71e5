"""sp.read: content sniffing picks the NMR readers regardless of extension; reader= forces one."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import FormatNotRecognisedError, PluginError, ReaderError
from specproc.testing.nmr_synth import write_bruker_experiment, write_csv_spectrum, write_jcamp_spectrum

COMP = [dict(name="A", center_ppm=1.0, fwhm_ppm=2.0, area_fraction=1.0, fraction_lorentz=0.5)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("dispatch")
    write_bruker_experiment(d / "S_1H" / "1", COMP, nucleus="1H", bf1_mhz=400.13, sw_hz=50_000.0, td=1024,
                            sample="S", seed=2)
    ppm = np.linspace(20, -20, 401)
    y = np.exp(-((ppm - 1) / 2) ** 2)
    write_csv_spectrum(d / "spec.txt", ppm, y, nucleus="1H", sf_mhz=400.13)
    write_jcamp_spectrum(d / "spec.weird", ppm, y, title="S", nucleus="1H", sf_mhz=400.13)
    (d / "notes.txt").write_text("just some notes\nnothing to see\n")
    return d


@pytest.mark.parametrize("rel,reader,signal", [
    ("S_1H/1", "bruker", "fid"), ("S_1H/1/fid", "bruker", "fid"), ("spec.txt", "nmr-text", "spectrum"),
    ("spec.weird", "jcampdx-nmr", "spectrum"),
])
def test_sniffing(files, rel, reader, signal):
    from specproc.io import guess_reader

    assert guess_reader(files / rel).name == reader
    m = sp.read(files / rel)
    assert m.attrs["provenance"]["reader"] == reader and m.attrs["signal_type"] == signal
    assert m.attrs["technique"] == "nmr"


def test_real_folders_sniffed(realdata):
    from specproc.io import guess_reader

    assert guess_reader(realdata / "nmr/topspin_1d_1H_MAS/1").name == "bruker"
    assert guess_reader(realdata / "nmr/topspin_1d_1H_MAS/1/pdata/1").name == "bruker"
    assert guess_reader(realdata / "nmr/varian_87Rb_satrec2D.fid").name == "varian"


def test_forced_reader(files):
    m = sp.read(files / "spec.weird", reader="jcampdx-nmr")
    assert m.dims == ("shift",)
    with pytest.raises(ReaderError) as e:  # a CSV forced through the JCAMP reader fails with a clear message
        sp.read(files / "spec.txt", reader="jcampdx-nmr")
    assert "spec.txt" in str(e.value)
    with pytest.raises(PluginError, match="no-such-reader"):
        sp.read(files / "spec.txt", reader="no-such-reader")


def test_pdata_option_through_read(files, tmp_path):
    with pytest.raises(ReaderError, match="1r"):
        sp.read(files / "S_1H/1", pdata=1)


def test_unknown_file(files):
    with pytest.raises(FormatNotRecognisedError) as e:
        sp.read(files / "notes.txt")
    assert "notes.txt" in str(e.value)


def test_unknown_folder(tmp_path):
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FormatNotRecognisedError) as e:
        sp.read(tmp_path / "empty_dir")
    assert "empty_dir" in str(e.value)


def test_missing_path(tmp_path):
    with pytest.raises(ReaderError, match="not found"):
        sp.read(tmp_path / "missing.jdx")


def test_copied_sample_folder_any_name(files, tmp_path):
    """Sniffing looks at content, not folder names."""
    dst = tmp_path / "whatever"
    shutil.copytree(files / "S_1H" / "1", dst)
    assert sp.read(dst).attrs["provenance"]["reader"] == "bruker"


def test_reader_search_reads_the_head_of_a_file_once(tmp_path, monkeypatch):
    """Every reader plugin sniffs the same head: one read per search, not one per plugin."""
    import builtins

    from specproc.io import guess_reader
    from specproc.io.base import head_bytes

    f = tmp_path / "s.csv"
    f.write_text("# nucleus: 1H\nppm,intensity\n" + "\n".join(f"{i},{i % 7}" for i in range(2000)) + "\n")
    opened = []
    real_open = builtins.open

    def counting_open(file, *a, **k):
        if str(file) == str(f):
            opened.append(a[0] if a else k.get("mode", "r"))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", counting_open)
    assert guess_reader(f).name == "nmr-text"
    assert len(opened) == 1
    # outside a search nothing is cached: a changed file is read afresh
    assert head_bytes(f, 5) == b"# nuc"
    f.write_bytes(b"GWYP....")
    assert head_bytes(f, 4) == b"GWYP"


@pytest.mark.parametrize("body,want", [
    (b"# nucleus: 11B\r\n\r\n  ppm,intensity\r\n1,2\r\n", "ppm,intensity"),   # CRLF, blank line, indent
    (b"#a\r#b\rwavenumber;absorbance\r1;2\r", "wavenumber;absorbance"),    # classic Mac line ends
    (b"ppm\tintensity\n", "ppm\tintensity"),
    (b"# only comments\n#\n", None),
    (b"ppm,int\x00\n", None),                                              # binary head
    (b"", None),
])
def test_first_content_line_is_the_header_test_of_text_sniffers(tmp_path, body, want):
    """The column-text sniffers (NMR / IR text) test the first line that is not blank or a comment."""
    from specproc.io.base import first_content_line, sniffing

    f = tmp_path / "f.csv"
    f.write_bytes(body)
    assert first_content_line(f) == want
    with sniffing():  # the same from the shared head of one reader search
        assert first_content_line(f) == want
    assert first_content_line(tmp_path) is None  # a folder


# ---------------------------------------------------------------- choice independent of entry-point order
#: the reader ``guess_reader`` chose for each sample_data input before readers declared a
#: ``priority`` (when the alphabetical entry-point order decided); a glob stands for every file it
#: matches. The automatic choice must not change with the ordering rule.
SAMPLE_CHOICES = {
    "afm/*.gwy": "gwyddion", "afm/Li_vs_LiBH4-70LiNBH_forcemap.nc": "netcdf",
    "echem": "echem-folder", "echem/LiBH4-70LiNBH_BV_*C": "echem-folder",
    "echem/LiBH4-70LiNBH_BV_*C/*.mpt": "eclab-mpt",
    "echem/*.mpt": "eclab-mpt", "echem/LiBH4-70LiNBH_DC_blocking.DTA": "gamry-dta",
    "echem/LiBH4-70LiNBH_EIS_30C_nova.txt": "echem-text", "echem/*.csv": "echem-text",
    "echem/LiBH4_EIS_Tseries": "echem-folder", "echem/LiBH4_EIS_Tseries/*.DTA": "gamry-dta",
    "echem/LiNBH_EIS_Tseries": "echem-folder", "echem/LiNBH_EIS_Tseries/*.z": "zview",
    "echem/public": "echem-folder", "echem/public/exampleDataAutolab.txt": "zview",
    "echem/public/exampleDataBioLogic.mpt": "eclab-mpt", "echem/public/exampleDataZPlot.z": "zview",
    "eels/*.hspy": "hyperspy", "eels/*.msa": "msa",
    "ftir/*.jdx": "jcampdx-ir", "ftir/csv/*.csv": "ir-text", "ftir/spc/*.spc": "spc",
    "nmr/*/1": "bruker", "nmr/*/1/fid": "bruker", "nmr/csv/*.csv": "nmr-text", "nmr/jcamp/*.jdx": "jcampdx-nmr",
    "xps/*.vms": "vamas", "xrd/*.xrdml": "xrdml", "xrd/*.xy": "xrd-text",
}

#: the same for the real files of ``../shared/realdata`` (paths relative to it)
REAL_CHOICES = {
    "afm/A151216.123306-02602.sxm": "nanonis", "afm/fmt-igor-fd_SiN_FD_plot.ibw": "afm-force",
    "afm/fmt-jpk-fd_map2x2_extracted.jpk-force-map": "afm-force", "afm/fmt-jpk-fd_spot3-0192.jpk-force": "afm-force",
    "afm/sample_0.jpk": "jpk-image", "eels/AL-DFoffset0.00.dm3": "gatan", "eels/EELS_SI.dm4": "gatan",
    "eels/EELS_STO.dm3": "gatan", "ftir/pacdec1.jdx": "jcampdx-ir", "ftir/test.0000": "opus",
    "ftir/xyinc1.jdx": "jcampdx-ir", "nmr/alginate_13C_CP/80": "bruker", "nmr/alginate_13C_CP/80/fid": "bruker",
    "nmr/dnp_29Si_CP_satrec/100": "bruker", "nmr/dnp_29Si_CP_satrec/100/ser": "bruker",
    "nmr/dnp_29Si_CP_satrec/100/pdata/1/t1t2.dx": "jcampdx-ir",   # by extension: no reader sniffs it
    "nmr/topspin_1d_1H_MAS/1": "bruker", "nmr/topspin_1d_1H_MAS/1/fid": "bruker",
    "nmr/topspin_1d_1H_MAS/1/pdata/1": "bruker", "nmr/varian_87Rb_satrec2D.fid": "varian",
    "nmr/varian_87Rb_satrec2D.fid/fid": "varian", "xps/Mutlipak_vms.npl": "vamas", "xps/feranick_2.vms": "vamas",
    "xps/regular.vms": "vamas", "xrd/LaB6_d500_si_psd.xye": "xrd-text", "xrd/XRD-918-16_10.xrdml": "xrdml",
    "xrd/simpack_xrd_AlGaAs.xrdml": "xrdml",
}


def _expand(root, table: dict) -> list[tuple[str, str]]:
    out = []
    for pattern, reader in table.items():
        hits = sorted(root.glob(pattern))
        assert hits, f"{pattern} matches nothing under {root}"
        out += [(str(p.relative_to(root)), reader) for p in hits]
    return out


def _choices(root, cases, order=None) -> dict[str, str]:
    """``guess_reader`` for each case, the registered readers listed to it in ``order`` (a function
    of the name list) instead of the entry points' order."""
    from unittest import mock

    from specproc import plugins
    from specproc.io import guess_reader

    loaded = plugins.loaded("readers")
    names = list(loaded) if order is None else order(list(loaded))
    with mock.patch.object(plugins, "loaded", lambda kind: {n: loaded[n] for n in names}
                           if kind == "readers" else {}):
        return {rel: guess_reader(root / rel).name for rel, _ in cases}


ORDERS = {"entry points": None, "reversed": lambda n: n[::-1],
          "shuffled": lambda n: [n[i] for i in np.random.default_rng(7).permutation(len(n))]}


@pytest.mark.parametrize("order", ORDERS)
def test_sample_data_choice_is_the_same_whatever_the_entry_point_order(order):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "sample_data"
    if not root.is_dir():
        pytest.skip("no sample_data")
    cases = _expand(root, SAMPLE_CHOICES)
    assert len(cases) == 127   # every recognised sample_data input of the baseline
    assert _choices(root, cases, ORDERS[order]) == dict(cases)


@pytest.mark.parametrize("order", ORDERS)
def test_real_files_choice_is_the_same_whatever_the_entry_point_order(realdata, order):
    cases = _expand(realdata, REAL_CHOICES)
    assert _choices(realdata, cases, ORDERS[order]) == dict(cases)


def test_sniff_order_most_specific_first_ties_by_name():
    """Signatures before format headers before generic column text; ties by name; a plugin object
    without ``priority`` (or with a non-int one) counts as a header test."""
    import types

    from specproc import plugins
    from specproc.io.base import Reader, sniff_order

    loaded = plugins.loaded("readers")
    levels = [getattr(r, "priority") for r in sniff_order(loaded)]
    assert levels == sorted(levels, reverse=True)
    assert {loaded[n].priority for n in ("xrd-text", "nmr-text", "ir-text", "echem-text")} == {Reader.COLUMNS}
    assert loaded["rigaku-ras"].priority > loaded["xrd-text"].priority      # *RAS_DATA_START beats "2 columns"
    assert loaded["spec"].priority > loaded["xrd-text"].priority
    assert loaded["bruker"].priority == Reader.SIGNATURE
    dup = {"b": types.SimpleNamespace(name="b"), "a": types.SimpleNamespace(name="a", priority="high"),
           "z": types.SimpleNamespace(name="z", priority=Reader.SIGNATURE),
           "c": types.SimpleNamespace(name="c", priority=Reader.COLUMNS)}
    assert [r.name for r in sniff_order(dup)] == ["z", "a", "b", "c"]


_RAS = ("*RAS_DATA_START\r\n*RAS_HEADER_START\r\n*FILE_SAMPLE \"s\"\r\n*HW_XG_WAVE_LENGTH_ALPHA1 \"1.540593\"\r\n"
        "*MEAS_SCAN_AXIS_X \"TwoThetaTheta\"\r\n*RAS_HEADER_END\r\n*RAS_INT_START\r\n"
        + "".join(f"{20 + 0.1 * i:.4f} {100 + i:.4f} 1.0000\r\n" for i in range(50))
        + "*RAS_INT_END\r\n*RAS_DATA_END\r\n")
_SPEC = ("#F t.spec\n#E 1600000000\n\n#S 1  ascan  tth 10 60 50 1\n#N 3\n#L Two Theta  Epoch  Detector\n"
         + "".join(f"{10 + 0.5 * i:.4f} 0 {100 + i}\n" for i in range(50)))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("name,text,reader", [("scan.ras", _RAS, "rigaku-ras"),
                                              ("scan_without_ext", _RAS, "rigaku-ras"), ("t.spec", _SPEC, "spec")])
def test_format_header_beats_generic_columns_whatever_the_order(tmp_path, order, name, text, reader):
    """A Rigaku RAS or SPEC file is also two-theta column text: both its own reader and the generic
    ``xrd-text`` reader recognise it, and the format's reader wins in every plugin order."""
    from specproc import plugins

    f = tmp_path / name
    f.write_bytes(text.encode())
    loaded = plugins.loaded("readers")
    assert loaded[reader].guess_can_open(f) and loaded["xrd-text"].guess_can_open(f)   # a real tie to break
    assert _choices(tmp_path, [(name, reader)], ORDERS[order]) == {name: reader}
