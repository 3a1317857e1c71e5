"""Refusals for the right reason (issue #21 §2), each on a real public file or a generated one.

* a Bruker 2D acquisition stopped early (``ser`` of the declared size, ``acqu2s`` TD smaller, the
  audit trail says stopped) is read — its acquired rows — with a reader note, not refused as
  "truncated?";
* an EDS spectrum in a DM3 file (signal type ``X-ray``/``EDS_TEM``, keV axis) is refused as
  "EDS spectrum, not EELS" instead of failing later on an incidental fitting window;
* JCAMP-DX ``$$`` inline comments after a header value are read (NMR and IR paths);
* a legacy Gwyddion 1.x file (``GWYO``) is named as such, with how to convert it.

Real files come from ``../shared/realdata`` (tests skip when it is absent) and are only ever copied
into ``tmp_path``.
"""
from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_data"

AUDIT_STOPPED = """##TITLE= Audit trail, TOPSPIN\t\tVersion 3.2
##JCAMPDX= 5.01
##ORIGIN= Bruker BioSpin GmbH
##OWNER= nmr
$$ /opt/topspin/data/user/nmr/sample/100/audita.txt
##AUDIT TRAIL=  $$ (NUMBER, WHEN, WHO, WHERE, PROCESS, VERSION, WHAT)
(   1,<2019-05-24 06:40:02.118 +0200>,<nmr>,<spect>,<go>,<TOPSPIN 3.2>,
      <created by zg
\tstarted at 2019-05-24 04:57:54.721 +0200,
\tacquisition stopped by user (halt) after {rows} of {declared} increments,
       data hash MD5: 4K * {rows}
       9B 81 F3 59 BB FA C6 65 37 45 31 DF 26 95 89 89>)
##END=
"""


# ---------------------------------------------------------------- Bruker 2D stopped early
def _copy_tree(src: Path, dst: Path) -> Path:
    """Copy a folder with writable files (the real-data files are read-only)."""
    dst.mkdir(parents=True)
    for item in src.iterdir():
        if item.is_dir():
            _copy_tree(item, dst / item.name)
        else:
            (dst / item.name).write_bytes(item.read_bytes())
    return dst


def _set_td(path: Path, td: int) -> None:
    text = path.read_text(encoding="latin-1")
    path.write_text(re.sub(r"^##\$TD=.*$", f"##$TD= {td}", text, flags=re.M), encoding="latin-1")


def _stop_after(expdir: Path, rows: int, declared: int, audit: bool = True) -> None:
    """Turn a complete 2D experiment into one stopped after ``rows`` rows, as TopSpin leaves it:
    ``ser`` keeps its declared size (the rows not acquired are zero), ``acqu2s`` TD = rows acquired."""
    ser = expdir / "ser"
    raw = bytearray(ser.read_bytes())
    stride = len(raw) // declared
    raw[rows * stride:] = bytes(len(raw) - rows * stride)
    ser.write_bytes(bytes(raw))
    _set_td(expdir / "acqu2s", rows)
    if audit:
        (expdir / "audita.txt").write_text(AUDIT_STOPPED.format(rows=rows, declared=declared))


def _generated_2d(folder: Path, rows: int = 8, td: int = 256) -> Path:
    """A complete pseudo-2D Bruker experiment written with nmrglue (acqus, acqu2s, acqu, acqu2, ser)."""
    import nmrglue as ng

    head = {"_comments": [], "_coreheader": ["##TITLE= Parameter file", "##JCAMPDX= 5.0"]}
    acqus = {**head, "TD": td, "SW_h": 10000.0, "SFO1": 100.6, "BF1": 100.6, "O1": 0.0, "DTYPA": 0,
             "BYTORDA": 0, "DECIM": 1, "DSPFVS": 0, "GRPDLY": -1, "NUC1": "13C", "PULPROG": "cp_satrec",
             "NS": 8, "MASR": 0}
    acqu2s = {**head, "TD": rows, "SW_h": 1.0, "SFO1": 400.0, "BF1": 400.0, "NUC1": "1H"}
    t = np.arange(td // 2) / 10000.0
    data = np.array([(1 - np.exp(-(k + 1) / 3)) * np.exp(2j * np.pi * 500 * t - 200 * t) * 1e5
                     for k in range(rows)])
    ng.bruker.write(str(folder), {"acqus": acqus, "acqu2s": acqu2s}, data.astype(np.complex64),
                    overwrite=True, write_prog=False)
    return folder


def test_generated_2d_stopped_early_reads_the_acquired_rows_with_a_note(tmp_path):
    exp = _generated_2d(tmp_path / "satrec" / "2")
    full = sp.read(exp)
    assert full.dims == ("row", "time") and full.shape == (8, 128)
    assert "reader_notes" not in full.attrs["acquisition"]
    _stop_after(exp, rows=5, declared=8)
    m = sp.read(exp)
    assert m.shape == (5, 128)
    np.testing.assert_array_equal(m.values, full.values[:5])
    notes = m.attrs["acquisition"]["reader_notes"]
    assert len(notes) == 1 and "stopped early: 5 of 8 rows acquired" in notes[0]
    assert "audit trail" in notes[0] and "stopped by user" in notes[0]


def test_stopped_early_confirmed_by_acqu2_alone(tmp_path):
    """No audit trail: ``acqu2`` TD (the declared rows) matching the ``ser`` size is enough."""
    exp = _generated_2d(tmp_path / "satrec" / "2")
    _stop_after(exp, rows=3, declared=8, audit=False)
    m = sp.read(exp)
    assert m.shape == (3, 128)
    assert "audit trail" not in m.attrs["acquisition"]["reader_notes"][0]


def test_unexplained_extra_rows_and_truncated_ser_still_refused(tmp_path):
    """More rows than acqu2s with neither acqu2 nor an audit trail to explain them, or fewer rows
    than acqu2s (a truncated copy): refused, never read silently."""
    exp = _generated_2d(tmp_path / "a" / "2")
    _stop_after(exp, rows=5, declared=8, audit=False)
    (exp / "acqu2").unlink()
    with pytest.raises(ReaderError, match=r"ser: file size .* neither acqu2 TD nor the audit trail"):
        sp.read(exp)
    exp2 = _generated_2d(tmp_path / "b" / "2")
    ser = exp2 / "ser"
    ser.write_bytes(ser.read_bytes()[:len(ser.read_bytes()) // 2])
    with pytest.raises(ReaderError, match=r"ser: file size .* truncated\?"):
        sp.read(exp2)


def test_real_2d_satrec_stopped_early(realdata, tmp_path):
    """The real 29Si saturation-recovery pseudo-2D (MANIFEST: 9 rows, vdlist 1..50 s) stopped after 5."""
    src = realdata / "nmr" / "dnp_29Si_CP_satrec" / "100"
    if not src.is_dir():
        pytest.skip(f"{src} not available")
    exp = _copy_tree(src, tmp_path / "satrec" / "100")
    full = sp.read(exp)
    assert full.shape == (9, 2048)
    _stop_after(exp, rows=5, declared=9)
    m = sp.read(exp)
    assert m.shape == (5, 2048)
    np.testing.assert_allclose(m.coords["row"].values, [1.0, 2.0, 3.0, 5.0, 7.0])  # vdlist, first 5
    np.testing.assert_array_equal(m.values, full.values[:5])
    assert "stopped early: 5 of 9 rows acquired" in m.attrs["acquisition"]["reader_notes"][0]
    # the note goes where readers' notes go, and survives processing (the NMR steps copy acquisition)
    spec = sp.nmr.process(m) if hasattr(sp.nmr, "process") else None
    if spec is not None:
        assert spec.attrs["acquisition"]["reader_notes"] == m.attrs["acquisition"]["reader_notes"]


def test_truncated_acqus_refused_fast(tmp_path):
    """nmrglue loops for ever on an acqus cut inside an array value: refused, and quickly."""
    import time

    exp = _generated_2d(tmp_path / "t" / "2")
    acqus = exp / "acqus"
    text = acqus.read_text()
    cut = text[:text.index("##END=")] + "##$SP= (0..63)\n1 2 3\n"  # cut after 3 of the array's 64 values
    acqus.write_text(cut)
    t0 = time.perf_counter()
    with pytest.raises(ReaderError, match=r"acqus: parameter file ends inside a multi-line value"):
        sp.read(exp)
    assert time.perf_counter() - t0 < 5


# ---------------------------------------------------------------- EDS spectrum in a DM3 file
def _dm3_tag(value) -> tuple[list[int], bytes]:
    """DM3 type info and little-endian data of one tag value."""
    if isinstance(value, bool):
        return [8], struct.pack("<?", value)
    if isinstance(value, int):
        return [3], struct.pack("<i", value)
    if isinstance(value, float):
        return [7], struct.pack("<d", value)
    if isinstance(value, str):  # DM strings: arrays of uint16
        return [20, 4, len(value)], value.encode("utf-16-le")
    arr = np.ascontiguousarray(value, dtype="<f4")
    return [20, 6, arr.size], arr.tobytes()


def _dm3_group(tree: dict) -> bytes:
    """A DM3 tag group (keys starting with '_' are unnamed tags)."""
    out = struct.pack(">BBi", 0, 1, len(tree))
    for name, value in tree.items():
        label = b"" if name.startswith("_") else name.encode("latin-1")
        if isinstance(value, dict):
            out += struct.pack(">Bh", 20, len(label)) + label + _dm3_group(value)
        else:
            info, data = _dm3_tag(value)
            out += (struct.pack(">Bh", 21, len(label)) + label + b"%%%%" + struct.pack(">i", len(info))
                    + struct.pack(f">{len(info)}i", *info) + data)
    return out


def write_dm3_spectrum(path: Path, values, scale: float, offset: float, units: str, signal: str) -> Path:
    """A minimal DigitalMicrograph 3 file holding one calibrated spectrum (what RosettaSciIO reads)."""
    values = np.asarray(values, "<f4")
    dim = {"Origin": -offset / scale, "Scale": float(scale), "Units": units}
    image = {"ImageData": {"Calibrations": {"Brightness": {"Origin": 0.0, "Scale": 1.0, "Units": "Counts"},
                                            "Dimension": {"_0": dim}},
                           "Data": values, "DataType": 2, "Dimensions": {"_0": int(values.size)}, "PixelDepth": 4},
             "ImageTags": {"Meta Data": {"Signal": signal, "Format": "Spectrum"}}, "Name": "spectrum"}
    body = _dm3_group({"ImageList": {"_0": image}})
    path.write_bytes(struct.pack(">iii", 3, len(body) + 8, 1) + body + b"\x00" * 8)
    return path


def _eds_counts(kev: np.ndarray) -> np.ndarray:
    lines = [(0.277, 300.0), (1.74, 900.0), (6.40, 500.0), (7.06, 80.0)]  # C Ka, Si Ka, Fe Ka, Fe Kb
    return 20 + sum(a * np.exp(-0.5 * ((kev - e) / 0.06) ** 2) for e, a in lines)


def test_eds_spectrum_in_dm3_refused_as_not_eels(tmp_path):
    kev = np.arange(2048) * 0.01
    p = write_dm3_spectrum(tmp_path / "EDS_map_point.dm3", _eds_counts(kev), 0.01, 0.0, "keV", "X-ray")
    with pytest.raises(ReaderError, match=r"EDS_map_point\.dm3: EDS spectrum, not EELS \(signal type 'EDS_TEM', "
                                          r"X-ray energy axis 0-20\.5 keV\)"):
        sp.read(p)


def test_kev_axis_without_eels_signal_type_refused(tmp_path):
    """No ``Meta Data.Signal`` tag but a keV axis: an X-ray spectrum, not an energy-loss one."""
    kev = np.arange(1024) * 0.02
    p = write_dm3_spectrum(tmp_path / "unknown.dm3", _eds_counts(kev), 0.02, 0.0, "keV", "")
    with pytest.raises(ReaderError, match=r"EDS spectrum, not EELS \(no EELS signal type, X-ray energy axis"):
        sp.read(p)


def test_generated_eels_dm3_still_read(tmp_path):
    """The same writer with signal type EELS and an eV axis gives an EELS spectrum (the refusal is specific)."""
    ev = 350.0 + 0.25 * np.arange(2048)
    p = write_dm3_spectrum(tmp_path / "core_loss.dm3", 1e5 * (ev / 350.0) ** -3, 0.25, 350.0, "eV", "EELS")
    m = sp.read(p)
    assert m.attrs["technique"] == "eels"
    assert m.coords["energy"].values[0] == pytest.approx(350.0) and m.attrs["acquisition"]["dispersion_eV"] == 0.25


def test_dm_file_with_eds_and_eels_signals_reads_the_eels_one(tmp_path, monkeypatch):
    """A DM file holding an EDS spectrum first and an EELS spectrum second: the EELS one is read."""
    import rsciio.digitalmicrograph as dm

    def sig(units, stype, scale, offset):
        return {"data": np.linspace(1.0, 2.0, 100, dtype="f4"), "metadata": {"Signal": {"signal_type": stype}},
                "axes": [{"name": "E", "size": 100, "scale": scale, "offset": offset, "units": units}],
                "original_metadata": {}, "mapping": {}}

    monkeypatch.setattr(dm, "file_reader", lambda f, **kw: [sig("keV", "EDS_TEM", 0.01, 0.0),
                                                            sig("eV", "EELS", 0.5, 280.0)])
    p = tmp_path / "both.dm3"
    p.write_bytes(b"\x00\x00\x00\x03" + bytes(64))
    m = sp.read(p)
    assert m.coords["energy"].values[0] == pytest.approx(280.0)
    with pytest.raises(ReaderError, match="EDS spectrum, not EELS"):
        sp.read(p, index=0)


def test_real_eels_dm3_relabelled_as_eds_is_refused(realdata, tmp_path):
    """The real STO core-loss DM3 with its signal tag rewritten "EELS" -> "X-ray" (in a tmp copy): refused.

    DM3 tag data carry no byte counts, so the uint16 string can change length in place once its
    element count in the type info is updated.
    """
    src = realdata / "eels" / "EELS_STO.dm3"
    if not src.is_file():
        pytest.skip(f"{src} not available")
    raw = src.read_bytes()
    old = (b"\x15\x00\x06Signal%%%%" + struct.pack(">iiii", 3, 20, 4, 4) + "EELS".encode("utf-16-le"))
    assert raw.count(old) == 1, "the STO file's Meta Data.Signal tag is not where expected"
    new = (b"\x15\x00\x06Signal%%%%" + struct.pack(">iiii", 3, 20, 4, 5) + "X-ray".encode("utf-16-le"))
    p = tmp_path / "STO_as_EDS.dm3"
    p.write_bytes(raw.replace(old, new))
    assert sp.read(src).attrs["technique"] == "eels"
    with pytest.raises(ReaderError, match=r"STO_as_EDS\.dm3: EDS spectrum, not EELS \(signal type 'EDS_TEM'"):
        sp.read(p)


# ---------------------------------------------------------------- JCAMP-DX $$ inline comments
def _comment_every_label(text: str) -> str:
    """Append a ``$$`` comment to every ``##`` header line and add a comment-only line and a data-line comment."""
    head, sep, rest = text.partition("##XYDATA=")
    head = re.sub(r"^(##[^\n]*?)\s*$", r"\1 $$ checked by the operator", head, flags=re.M)
    first, nl, data = rest.partition("\n")
    return head + "$$ a comment line\n" + sep + first + nl + re.sub(r"\n", " $$ row\n", data, count=3)


@pytest.mark.parametrize("rel, reader", [("ftir/LiBH4.jdx", "jcampdx-ir"),
                                         ("nmr/jcamp/LiBH4_11B.jdx", "jcampdx-nmr")])
def test_jcamp_inline_comments_are_read(tmp_path, rel, reader):
    src = SAMPLES / rel
    p = tmp_path / "commented.jdx"
    p.write_text(_comment_every_label(src.read_text(encoding="latin-1")), encoding="latin-1")
    assert "##YFACTOR=" in p.read_text() and "$$ checked" in p.read_text()
    ref, m = sp.read(src), sp.read(p)
    assert m.attrs["provenance"]["reader"] == reader
    np.testing.assert_allclose(m.values, ref.values)
    dim = ref.dims[-1]
    np.testing.assert_allclose(m.coords[dim].values, ref.coords[dim].values)


def test_jcamp_ir_comment_after_yfactor_gave_a_numpy_error(tmp_path):
    """The reported case: ``##YFACTOR= 1e-05 $$ ...`` made jcamp multiply by a string (UFuncTypeError)."""
    text = (SAMPLES / "ftir" / "LiBH4.jdx").read_text()
    p = tmp_path / "yfactor.jdx"
    p.write_text(text.replace("##YFACTOR= 1e-05", "##YFACTOR= 1e-05 $$ from the OPUS export"))
    m = sp.read(p)
    assert m.attrs["acquisition"]["y_kind"] == "absorbance"
    np.testing.assert_allclose(m.values, sp.read(SAMPLES / "ftir" / "LiBH4.jdx").values)


def test_jcamp_nmr_peak_table_with_comments(tmp_path):
    """The NMR fallback parser (``jcamp`` package, peak tables) gets the comment-free text too."""
    p = tmp_path / "peaks.jdx"
    p.write_text("##TITLE= peaks $$ test\n##JCAMP-DX= 5.01 $$ version\n##DATA TYPE= NMR PEAK TABLE $$ c\n"
                 "##.OBSERVE FREQUENCY= 400.13 $$ MHz\n##.OBSERVE NUCLEUS= ^1H\n##XUNITS= PPM $$ shift\n"
                 "##YUNITS= ARBITRARY UNITS\n##XFACTOR= 1.0 $$ none\n##YFACTOR= 1.0 $$ none\n##NPOINTS= 3\n"
                 "##PEAK TABLE= (XY..XY) $$ peaks\n7.26, 100.0 $$ CHCl3\n3.31, 50.0\n1.25, 20.0\n##END=\n")
    m = sp.read(p)
    assert m.attrs["provenance"]["reader"] == "jcampdx-nmr"
    np.testing.assert_allclose(sorted(m.coords["shift"].values), [1.25, 3.31, 7.26])


@pytest.mark.parametrize("label, value, match", [("NPOINTS", "0", r"##NPOINTS= 0 is not a positive whole number"),
                                                 ("NPOINTS", "-7", r"##NPOINTS= -7 is not a positive whole number"),
                                                 ("XFACTOR", "0", r"##XFACTOR= 0 is not a non-zero number"),
                                                 ("FIRSTX", "abc", r"##FIRSTX= abc is not a number")])
def test_jcamp_ir_absurd_header_numbers_refused_in_user_terms(tmp_path, label, value, match):
    text = (SAMPLES / "ftir" / "LiBH4.jdx").read_text()
    p = tmp_path / "absurd.jdx"
    p.write_text(re.sub(rf"^##{label}=.*$", f"##{label}= {value}", text, flags=re.M))
    with pytest.raises(ReaderError, match=match):
        sp.read(p)


# ---------------------------------------------------------------- legacy Gwyddion 1.x
def test_legacy_gwyddion_file_named_with_how_to_convert(tmp_path):
    p = tmp_path / "scan_2004.gwy"
    p.write_bytes(b"GWYO" + b"GwyContainer\x00" + bytes(64))
    with pytest.raises(ReaderError) as exc:
        sp.read(p)
    msg = str(exc.value)
    assert "scan_2004.gwy" in msg and "legacy Gwyddion 1.x" in msg
    assert "open it in Gwyddion 2.x and save it again as .gwy" in msg
    assert "not a Gwyddion file" not in msg


def test_non_gwyddion_bytes_still_not_a_gwyddion_file(tmp_path):
    p = tmp_path / "other.gwy"
    p.write_bytes(b"JUNK" + bytes(64))
    with pytest.raises(ReaderError, match=r"not a Gwyddion file \(no GWYP magic\)"):
        sp.read(p, reader="gwyddion")


# ---------------------------------------------------------------- one place for every reader's refusals
#: words that are Python / numpy / HDF5 internals, never a reason for the instrument user
_INTERNALS = ("Error:", "Errno", "Traceback", "index out of range", "object has no attribute", "dtype(",
              "unpack requires", "Unable to synchronously", "sblock", "ufunc")


def _user_words(msg: str) -> bool:
    return not any(w in msg for w in _INTERNALS)


#: readers whose input may be a folder, and readers of single files only (a sample of each kind)
FOLDER_READERS = {"bruker", "varian", "echem-folder", "hyperspy"}
FILE_READERS = {"spec", "spc", "xrdml", "xrd-text", "rigaku-ras", "ir-text", "nmr-text", "jcampdx-nmr", "netcdf",
                "nanonis", "afm-force", "gatan", "msa", "eclab-mpt", "gamry-dta", "zview", "echem-text"}


def test_folder_readers_are_declared():
    """``Reader.reads_folders`` is a declared capability: the folder readers set it, the others do not."""
    from specproc import plugins

    declared = {n for n in plugins.available("readers") if plugins.get("readers", n).reads_folders}
    assert FOLDER_READERS <= declared and not declared & FILE_READERS


@pytest.mark.parametrize("reader", ["spec", "spc", "xrdml", "ir-text", "netcdf", "eclab-mpt", "zview"])
def test_folder_given_to_a_file_reader_is_refused_in_words(tmp_path, reader):
    """A folder to a single-file reader: refused by the reader's guard, through sp.read and directly."""
    from specproc import plugins

    folder = tmp_path / "run_07"
    folder.mkdir()
    (folder / "notes.txt").write_text("x\n")
    for call in (lambda: sp.read(folder, reader=reader), lambda: plugins.get("readers", reader).read(folder)):
        with pytest.raises(ReaderError) as e:
            call()
        msg = str(e.value)
        assert e.value.path == str(folder) and "this is a folder" in msg and f"the {reader} reader" in msg
        assert _user_words(msg), msg


def test_unknown_option_refused_with_the_options_the_reader_takes(tmp_path):
    f = tmp_path / "p.xy"
    f.write_text("".join(f"{10 + 0.1 * i:.2f} {100 + i}\n" for i in range(50)))
    with pytest.raises(ReaderError, match=r"does not accept option\(s\) \['wavelenght_nm'\].*wavelength_nm"):
        sp.read(f, wavelenght_nm=0.15)
    assert sp.read(f, wavelength_nm=0.15).attrs["acquisition"]["wavelength_nm"] == 0.15


def test_guard_keeps_the_reader_signature():
    """The wrapper is transparent to introspection (CLI options, the contract's explicit-signature check)."""
    import inspect

    from specproc.io.spec import SpecReader

    assert list(inspect.signature(SpecReader().read).parameters) == [
        "path", "scan", "counter", "two_theta", "wavelength_nm"]
    assert SpecReader.read._specproc_guarded


class _BrokenLibError(BaseException):
    """A reading library's error class outside ``Exception`` (afmformats does this)."""


@pytest.mark.parametrize("exc, words", [
    (IndexError("list index out of range"), "does not follow the format"),
    (struct.error("unpack requires a buffer of 4 bytes"), "ends before its structure does"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "unknown encoding"),
    (MemoryError(), "more data than can be held in memory"),
    (ZeroDivisionError("division by zero"), "header number is out of range"),
    (_BrokenLibError("Could not parse metadata"), "corrupt or not of this format"),
    (OSError("File handle at wrong position to read data!"), "truncated or corrupt"),
])
def test_library_exceptions_become_reader_errors_by_type(tmp_path, exc, words):
    """Any exception a reader lets through becomes one ReaderError in user words, chained for developers."""
    from specproc.io.base import Reader

    class Failing(Reader):
        name = "failing"

        def read(self, path, sample: str | None = None):
            raise exc

    f = tmp_path / "scan_3.dat"
    f.write_bytes(b"\x01\x02")
    with pytest.raises(ReaderError) as e:
        Failing().read(f)
    msg = str(e.value)
    assert e.value.path == str(f) and msg.startswith(f"{f}: the failing reader cannot read it: ")
    assert words in msg and _user_words(msg), msg
    assert e.value.__cause__ is exc


def test_interrupts_are_not_translated(tmp_path):
    from specproc.io.base import Reader

    class Interrupted(Reader):
        name = "interrupted"

        def read(self, path):
            raise KeyboardInterrupt

    f = tmp_path / "a.dat"
    f.write_bytes(b"x")
    with pytest.raises(KeyboardInterrupt):
        Interrupted().read(f)


def _hspy_bytes() -> bytes:
    return (SAMPLES / "eels" / "LiBH4_BK.hspy").read_bytes()


@pytest.mark.parametrize("reader, name", [("netcdf", "map.nc"), ("hyperspy", "si.hspy")])
def test_damaged_hdf5_refused_in_user_words(tmp_path, reader, name):
    """h5py's OSError / RuntimeError text never reaches the user: truncated, foreign and damaged HDF5."""
    data = _hspy_bytes()
    cases = {
        "truncated": (data[:len(data) // 2], rf"truncated HDF5 file: {len(data) // 2:,} bytes of the {len(data):,}"),
        "foreign": (data[:8] + bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)),
                    "not an HDF5 file or damaged: "),
        "no_signature": (data[:4] + b"\xff" * 60 + data[64:], r"not an HDF5 file|no HDF5 signature"),
    }
    for what, (payload, match) in cases.items():
        f = tmp_path / what / name
        f.parent.mkdir()
        f.write_bytes(payload)
        with pytest.raises(ReaderError, match=match) as e:
            sp.read(f, reader=reader)
        assert e.value.path == str(f) and _user_words(str(e.value)), (what, str(e.value))


def test_check_hdf5_self_contained_words(tmp_path):
    from specproc.io.base import check_hdf5_self_contained

    f = tmp_path / "half.h5"
    data = _hspy_bytes()
    f.write_bytes(data[:512])
    with pytest.raises(ReaderError, match=f"truncated HDF5 file: 512 bytes of the {len(data):,} its header") as e:
        check_hdf5_self_contained(f)
    assert _user_words(str(e.value))
    assert check_hdf5_self_contained(SAMPLES / "eels" / "LiBH4_BK.hspy") > 0  # an intact file passes


def test_zip_container_check_words(tmp_path):
    from specproc.io.base import check_zip_self_contained

    f = tmp_path / "store.zspy"
    f.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(ReaderError, match="not a valid ZIP container") as e:
        check_zip_self_contained(f)
    assert e.value.path == str(f) and _user_words(str(e.value))
