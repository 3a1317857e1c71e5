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
