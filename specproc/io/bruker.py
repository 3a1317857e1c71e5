"""Bruker TopSpin / XWIN-NMR experiment folders (``acqus`` + ``fid``/``ser``, ``pdata/N/1r``).

Reading and parameter parsing go through :mod:`nmrglue.bruker`; this module only locates the
files, validates sizes and metadata, and builds the specproc measurement.

* Raw data (default): ``fid`` -> dims ``("time",)``, ``ser`` -> ``("row", "time")`` with the row
  coordinate from ``vdlist``/``vclist`` when present. The Bruker digital filter is **kept** in the
  data; ``DECIM``, ``DSPFVS``, ``GRPDLY`` are stored in ``attrs["acquisition"]`` so the processing
  step can remove it with :func:`nmrglue.bruker.rm_dig_filter`.
* A 2D acquisition stopped early (``ser`` of the declared ``acqu2`` TD rows, ``acqu2s`` TD = the rows
  acquired; the audit trail ``audita.txt`` usually says so) is read — its acquired rows — with a note in
  ``attrs["acquisition"]["reader_notes"]`` (the readers' channel for warnings).
* Parameter files are parsed with nmrglue's parser behind a guard: a truncated ``acqus`` (cut inside
  an array) is refused instead of hanging the parser.
* Processed data (``pdata=N``, a ``pdata/N`` path, or no fid but a ``1r``): ``1r`` (+ ``1i`` as the
  imaginary part when present) on ``ppm_i = OFFSET - i * SW_p / SF / SI``.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ..core.errors import ReaderError
from ..core.measurement import new_measurement
from ..core.provenance import file_provenance
from ._nmr_axis import (acquisition_dict, check_acquisition, epoch_to_iso, jsonable, normalise_nucleus,
                        parse_time_list, pdata_ppm_axis, to_float)
from .base import Reader, require_file

_RAW_NAMES = ("fid", "ser")
#: TopSpin (< 4) pads every FID of a ``ser`` file (and 1D ``fid``) to a 1024-byte block.
_BLOCK_BYTES = 1024


#: the largest parameter file (acqus, procs...) read; TopSpin writes ~10-100 kB
_MAX_PAR_BYTES = 8 << 20


class _TruncatedPar(Exception):
    """A parameter file ends inside a multi-line value (an array or a ``<...>`` string)."""


class _GuardedText(io.StringIO):
    """Text for nmrglue's parameter parser that cannot make it loop at the end of the file.

    nmrglue reads the lines of an array (``##$X= (0..N)``) or of a ``<...>`` string until it has
    them all, calling ``readline()`` again after the end of the file: on a truncated file it never
    stops. Here the first read at the end returns ``""`` (the parser's end-of-file test) and any
    later one raises :class:`_TruncatedPar`.
    """

    def __init__(self, text: str):
        super().__init__(text)
        self._ends = 0

    def readline(self, size: int = -1) -> str:  # noqa: D102
        line = super().readline(size)
        if line == "":
            self._ends += 1
            if self._ends > 1:
                raise _TruncatedPar
        return line


def _read_par(path: Path) -> dict:
    """Parse a Bruker JCAMP-style parameter file (acqus, procs) with nmrglue's parser.

    The text is decoded here (UTF-8, else Latin-1: instrument files are often cp1252, ``##OWNER=
    José``, and Latin-1 decodes any byte) and handed to the parser through :class:`_GuardedText`,
    so a truncated file is refused instead of hanging.

    Raises
    ------
    ReaderError
        Missing, empty, oversized, binary, truncated or parameter-less file.
    """
    from nmrglue.fileio import bruker as ng_bruker

    from ..core.quiet import quiet
    from ._nmr_axis import decode_text

    path = require_file(Path(path), "parameter file")
    if path.is_dir():
        raise ReaderError("expected a parameter file, found a folder", path)
    if path.stat().st_size > _MAX_PAR_BYTES:
        raise ReaderError(f"parameter file is {path.stat().st_size / 2**20:.0f} MiB: not a Bruker parameter "
                          "file (acqus/procs are a few kB)", path)
    raw = path.read_bytes().rstrip(b"\x00")  # NUL padding after ##END= is harmless
    if b"\x00" in raw:
        raise ReaderError("parameter file holds binary data (corrupt, or not a Bruker parameter file)", path)
    dic: dict = {"_coreheader": [], "_comments": []}
    try:
        with quiet(ng_bruker):  # nmrglue warns per odd line; the keys we need are validated after
            dic = ng_bruker.parse_jcamp_file(_GuardedText(decode_text(raw)), dic)
    except _TruncatedPar:
        raise ReaderError("parameter file ends inside a multi-line value (truncated?)", path) from None
    except Exception:  # nmrglue raises bare exceptions on garbage
        raise ReaderError("parameter file cannot be parsed (corrupt, or not a Bruker parameter file)",
                          path) from None
    if not isinstance(dic, dict) or len([k for k in dic if not k.startswith("_")]) == 0:
        raise ReaderError("parameter file has no ##$ parameters (corrupt or not a Bruker file)", path)
    return dic


def _required(dic: dict, key: str, path: Path) -> float:
    if key not in dic:
        raise ReaderError(f"parameter {key} is missing", path)
    v = to_float(dic[key])
    if v is None:
        raise ReaderError(f"parameter {key} = {dic[key]!r} is not a number", path)
    return v


def _first_line(path: Path) -> str | None:
    try:
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.strip():
                return line.strip()
    except OSError:
        pass
    return None


def _word_size(dtyp: Any, path: Path) -> tuple[int, bool]:
    """Bytes per value and float flag from DTYPA/DTYPP (0 = int32, 2 = float64)."""
    d = int(to_float(dtyp) or 0)
    if d == 0:
        return 4, False
    if d == 2:
        return 8, True
    raise ReaderError(f"unsupported data type DTYP = {d} (expected 0 int32 or 2 float64)", path)


class _Layout(NamedTuple):
    """Where the rows of a ``fid``/``ser`` file are: ``rows`` acquired rows read out of ``stored``
    rows of ``stride`` bytes each (block padding included)."""

    rows: int
    stored: int
    stride: int
    acqu2s: dict | None
    notes: tuple[str, ...]


def _raw_layout(expdir: Path, bin_path: Path, td: int, ws: int) -> _Layout:
    """Rows of the raw file from its size, ``TD`` and (2D) ``acqu2s``/``acqu2``; refuses sizes that fit none.

    TopSpin (< 4) pads every row to a 1024-byte block. A 2D acquisition stopped early keeps the
    ``ser`` file of the declared size (``acqu2`` TD rows, the unacquired ones zero) while ``acqu2s``
    TD counts the rows acquired: those rows are read, with a reader note.
    """
    size = bin_path.stat().st_size
    if size == 0:
        raise ReaderError("data file is empty", bin_path)
    if size % ws:
        raise ReaderError(f"file size {size} B is not a multiple of the {ws}-byte word size (truncated?)", bin_path)
    row_bytes = td * ws
    padded = -(-row_bytes // _BLOCK_BYTES) * _BLOCK_BYTES
    acqu2s, nrows = None, 1
    if bin_path.name == "ser":
        if (expdir / "acqu3s").is_file():
            raise ReaderError("3D (and higher) ser files are not supported", bin_path)
        if (expdir / "acqu2s").is_file():
            acqu2s = _read_par(expdir / "acqu2s")
            nrows = int(to_float(acqu2s.get("TD")) or 0)
        if nrows <= 0:
            nrows = size // padded if size % padded == 0 else size // row_bytes
    if nrows > 1 and size in (nrows * row_bytes, nrows * padded):
        return _Layout(nrows, nrows, size // nrows, acqu2s, ())
    if acqu2s is not None and size > nrows * padded:
        stopped = _stopped_early(expdir, bin_path, size, nrows, row_bytes, padded)
        if stopped is not None:
            return stopped._replace(acqu2s=acqu2s)
    if size < nrows * row_bytes:
        raise ReaderError(f"file size {size} B does not match TD = {td} x {nrows} row(s) of {ws}-byte "
                          f"values (need {nrows * row_bytes} or {nrows * padded} B; truncated?)", bin_path)
    if nrows > 1:
        raise ReaderError(f"file size {size} B is more than TD = {td} x {nrows} row(s) of {ws}-byte values "
                          f"({nrows * row_bytes} or {nrows * padded} B) and neither acqu2 TD nor the audit trail "
                          "(audita.txt) says the acquisition was stopped early", bin_path)
    if size > padded:
        raise ReaderError(f"file size {size} B is larger than TD = {td} values of {ws} B "
                          f"(wrong TD or a ser file named {bin_path.name}?)", bin_path)
    return _Layout(1, 1, size, acqu2s, ())


def _stopped_early(expdir: Path, bin_path: Path, size: int, acquired: int, row_bytes: int,
                   padded: int) -> _Layout | None:
    """The layout of a 2D stopped before its last row, or None when the file is not one.

    It is one when the ``ser`` file holds a whole number of rows, more than ``acqu2s`` TD
    (``acquired``), and that number is ``acqu2`` TD (the rows declared) or the audit trail says the
    acquisition was stopped.
    """
    fits = [n for n, b in ((size // padded, padded), (size // row_bytes, row_bytes)) if n * b == size]
    declared = _declared_rows(expdir)
    stored = declared if declared in fits else (fits[0] if fits else 0)
    if stored <= acquired:
        return None
    audit = _audit_stop_entry(expdir)
    if stored != declared and audit is None:
        return None
    note = (f"acquisition stopped early: {acquired} of {stored} rows acquired (acqu2s TD = {acquired}, "
            f"{bin_path.name} holds {stored} rows); only the acquired rows are read")
    if audit:
        note += f" (audit trail: {audit!r})"
    return _Layout(acquired, stored, size // stored, None, (note,))


def _declared_rows(expdir: Path) -> int | None:
    """``acqu2`` TD: the rows a 2D acquisition was set up to record (None when unknown)."""
    f = expdir / "acqu2"
    if not f.is_file():
        return None
    try:
        td = to_float(_read_par(f).get("TD"))
    except ReaderError:
        return None
    return int(td) if td else None


#: words of an audit-trail entry (``audita.txt``) recording an acquisition that did not run to its end
_STOP_WORDS = re.compile(r"\b(stopped|halted|halt|aborted|interrupted|cancell?ed)\b", re.I)


def _audit_stop_entry(expdir: Path) -> str | None:
    """The audit-trail line (``audita.txt``) saying the acquisition was stopped, or None."""
    f = expdir / "audita.txt"
    if not f.is_file() or f.stat().st_size > _MAX_PAR_BYTES:
        return None
    for line in f.read_text(encoding="latin-1").splitlines():
        if _STOP_WORDS.search(line) and not line.lstrip().startswith("$$"):
            return line.strip().strip("<>(),")[:120]
    return None


def _read_rows(bin_path: Path, dtype: np.dtype, layout: _Layout, td: int) -> np.ndarray:
    """The acquired rows as complex128 ``(rows, td // 2)``, through a memory map.

    (not nmrglue.bruker.read, which reads the whole file into memory and then copies it: peak
    memory is the complex128 result only)
    """
    per_row = layout.stride // dtype.itemsize
    try:
        raw = np.memmap(bin_path, dtype=dtype, mode="r", shape=(layout.stored, per_row))[:layout.rows]
        data = np.empty((layout.rows, td // 2), np.complex128)
        data.real = raw[:, 0:td:2]
        data.imag = raw[:, 1:td:2]
        del raw
    except OSError as exc:
        raise ReaderError(f"could not read the data: {exc.strerror or 'read error'}", bin_path) from None
    except ValueError:  # the memory map does not fit the file (it changed while being read)
        raise ReaderError("the data file does not hold the rows its size implies (changed while reading?)",
                          bin_path) from None
    return data


def _raw_original(expdir: Path, acqus: dict, procs: dict | None, acqu2s: dict | None) -> dict:
    """``original_metadata`` of a raw read: acqus, procs, acqu2s and the variable lists as text."""
    original = {"acqus": acqus, "procs": procs or {}}
    if acqu2s is not None:
        original["acqu2s"] = acqu2s
    for lst in ("vdlist", "vclist", "vplist"):
        if (expdir / lst).is_file():
            original[lst] = (expdir / lst).read_text(encoding="latin-1")
    return original


class BrukerReader(Reader):
    """Bruker TopSpin / XWIN-NMR experiment folder (raw FID/ser or processed 1r)."""

    name: ClassVar[str] = "bruker"
    priority: ClassVar[int] = Reader.SIGNATURE
    library: ClassVar[str] = "nmrglue"
    description: ClassVar[str] = "Bruker TopSpin/XWIN-NMR experiment folder (acqus + fid/ser, pdata/N/1r) via nmrglue"
    technique: ClassVar[str] = "nmr"
    extensions: ClassVar[tuple[str, ...]] = ()
    url: ClassVar[str] = "https://nmrglue.readthedocs.io/en/latest/reference/bruker.html"
    reads_folders: ClassVar[bool] = True

    # ------------------------------------------------------------------ sniffing
    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        if p.is_file():
            return p.name in _RAW_NAMES and (p.parent / "acqus").is_file()
        if not p.is_dir():
            return False
        if (p / "acqus").is_file() and any((p / n).is_file() for n in _RAW_NAMES):
            return True
        if (p / "acqus").is_file() and any((p / "pdata").glob("*/1r")):
            return True
        # a pdata/N folder
        return (p / "1r").is_file() and (p / "procs").is_file() and p.parent.name == "pdata"

    # ------------------------------------------------------------------ reading
    def read(self, path: Path, pdata: int | None = None) -> Any:
        """Read a Bruker experiment.

        Parameters
        ----------
        path : Path
            Experiment folder (``.../<expno>``), the ``fid``/``ser`` file itself, or a ``pdata/N`` folder.
        pdata : int, optional
            Read processed data ``pdata/<pdata>/1r`` instead of the raw FID. Implied when ``path``
            is a pdata folder or when there is no fid/ser but a ``pdata/*/1r``.

        Returns
        -------
        xarray.DataArray
            FID: dims ``("time",)`` (s) or ``("row", "time")``, complex, ``signal_type="fid"``.
            Spectrum: dim ``("shift",)`` (ppm), ``signal_type="spectrum"``; complex when ``1i`` exists.

        Raises
        ------
        ReaderError
            Missing folder or files, truncated data, corrupt or implausible parameters.
        """
        p = Path(path)
        if not p.exists():
            raise ReaderError("Bruker experiment folder not found", p)
        expdir, pdir = self._locate(p, pdata)
        if pdir is not None:
            return self._read_processed(expdir, pdir)
        return self._read_raw(expdir)

    def _locate(self, p: Path, pdata: int | None) -> tuple[Path, Path | None]:
        if p.is_file():
            if p.name in _RAW_NAMES:
                p = p.parent
            elif p.name in ("1r", "1i", "procs"):
                p = p.parent
            else:
                raise ReaderError("not a Bruker experiment: expected a folder, fid/ser or pdata/N folder", p)
        if p.parent.name == "pdata" and (p / "procs").exists():
            return p.parent.parent, p
        if not (p / "acqus").is_file():
            raise ReaderError("not a Bruker experiment folder: acqus not found", p)
        if pdata is not None:
            pdir = p / "pdata" / str(int(pdata))
            if not pdir.is_dir():
                raise ReaderError(f"processed data folder pdata/{pdata} not found", p)
            return p, pdir
        if not any((p / n).is_file() for n in _RAW_NAMES):
            found = sorted((p / "pdata").glob("*/1r"), key=lambda q: q.parent.name)
            if found:
                return p, found[0].parent
            raise ReaderError("no fid or ser file (and no processed pdata/*/1r) in experiment folder", p)
        return p, None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _acqus(expdir: Path) -> tuple[dict, dict]:
        acqus_path = expdir / "acqus"
        acqus = _read_par(acqus_path)
        sfo1 = _required(acqus, "SFO1", acqus_path)
        sw_h = _required(acqus, "SW_h", acqus_path)
        td = _required(acqus, "TD", acqus_path)
        return acqus, {"SFO1": sfo1, "SW_h": sw_h, "TD": td}

    @staticmethod
    def _sample(expdir: Path, pdir: Path | None) -> str:
        for cand in ([pdir / "title"] if pdir is not None else []) + [expdir / "pdata" / "1" / "title"]:
            if cand.is_file():
                t = _first_line(cand)
                if t:
                    return t
        # no title: the folder name plus the experiment number, so the experiments of one
        # dataset (CP/80, CP/81, ...) are distinguishable
        exp = expdir.resolve()
        return f"{exp.parent.name}_{exp.name}" if exp.name.isdigit() else exp.name

    def _acquisition(self, acqus: dict, procs: dict | None) -> dict:
        sfo1 = to_float(acqus.get("SFO1"))
        bf1 = to_float(acqus.get("BF1"))
        sf = to_float(procs.get("SF")) if procs else None
        sf = sf or bf1
        sr = (sf - bf1) * 1e6 if (sf and bf1) else None
        grpdly = to_float(acqus.get("GRPDLY"))
        if grpdly is not None and grpdly < 0:  # -1 = "not recorded" in older acqus
            grpdly = None
        return acquisition_dict(
            sfo1_mhz=sfo1, bf1_mhz=bf1, sf_mhz=sf, sr_hz=sr, o1_hz=acqus.get("O1"), sw_hz=acqus.get("SW_h"),
            td=acqus.get("TD"), decim=acqus.get("DECIM"), dspfvs=acqus.get("DSPFVS"), grpdly=grpdly,
            mas_rate_hz=acqus.get("MASR"), pulprog=acqus.get("PULPROG"), ns=acqus.get("NS"))

    def _metadata(self, acqus: dict) -> dict:
        instrument = acqus.get("INSTRUM") or acqus.get("ORIGIN")
        return {"nucleus": normalise_nucleus(acqus.get("NUC1")), "instrument": instrument,
                "date": epoch_to_iso(acqus.get("DATE"))}

    @staticmethod
    def _procs(pdir: Path | None) -> dict | None:
        if pdir is None or not (pdir / "procs").is_file():
            return None
        return _read_par(pdir / "procs")

    # ------------------------------------------------------------------ raw FID / ser
    def _read_raw(self, expdir: Path) -> Any:
        """Read ``fid`` / ``ser`` (see :meth:`read`); a 2D stopped early keeps its acquired rows."""
        acqus, req = self._acqus(expdir)
        bin_name = "fid" if (expdir / "fid").is_file() else "ser"
        bin_path = expdir / bin_name
        try:  # procs only supplies SF for the raw FID: a broken one must not block reading it
            procs = self._procs(expdir / "pdata" / "1")
        except ReaderError:
            procs = None
        acq = self._acquisition(acqus, procs)
        check_acquisition(acq, expdir / "acqus")
        td = int(req["TD"])
        if td % 2:
            raise ReaderError(f"TD = {td} is odd; expected real+imaginary pairs", expdir / "acqus")
        ws, isfloat = _word_size(acqus.get("DTYPA", 0), expdir / "acqus")
        big = int(to_float(acqus.get("BYTORDA")) or 0) == 1
        layout = _raw_layout(expdir, bin_path, td, ws)
        dtype = np.dtype(("f8" if isfloat else "i4")).newbyteorder(">" if big else "<")
        data = _read_rows(bin_path, dtype, layout, td)
        t = np.arange(data.shape[-1]) / req["SW_h"]
        coords: list = [("time", t, "s")]
        if layout.rows > 1:
            rv, ru = self._row_coord(expdir, layout.rows)
            coords.insert(0, ("row", rv, ru))
        else:
            data = data.reshape(-1)
        if layout.notes:
            acq["reader_notes"] = list(layout.notes)
        return new_measurement(
            data, coords, technique="nmr", units="arb", name="fid", signal_type="fid",
            sample=self._sample(expdir, expdir / "pdata" / "1"), metadata=self._metadata(acqus),
            acquisition=acq, original_metadata=jsonable(_raw_original(expdir, acqus, procs, layout.acqu2s)),
            provenance=file_provenance(expdir, self.name), source=str(bin_path))

    @staticmethod
    def _row_coord(expdir: Path, nrows: int) -> tuple[np.ndarray, str]:
        """Row coordinate of a pseudo-2D: vdlist (s) or vclist (counts) if their length fits, else index."""
        for lst, unit in (("vdlist", "s"), ("vclist", "")):
            f = expdir / lst
            if f.is_file():
                try:
                    if lst == "vdlist":
                        vals = parse_time_list(f.read_text(encoding="latin-1"))
                    else:
                        vals = [float(x) for x in f.read_text(encoding="latin-1").split()]
                except ValueError as exc:
                    raise ReaderError(f"cannot parse {lst}: {exc}", f) from exc
                if len(vals) >= nrows:
                    return np.asarray(vals[:nrows], dtype=float), unit
        return np.arange(nrows, dtype=float), ""

    # ------------------------------------------------------------------ processed 1r
    def _read_processed(self, expdir: Path, pdir: Path) -> Any:
        import nmrglue as ng

        r_path = pdir / "1r"
        if not r_path.is_file():
            if any((pdir / n).is_file() for n in ("2rr", "3rrr")):
                raise ReaderError("processed 2D/3D data (2rr) are not supported; read the raw ser instead", pdir)
            raise ReaderError("no processed spectrum 1r in pdata folder", pdir)
        procs_path = pdir / "procs"
        if not procs_path.is_file():
            raise ReaderError("procs not found beside 1r", pdir)
        procs = _read_par(procs_path)
        si = int(_required(procs, "SI", procs_path))
        offset = _required(procs, "OFFSET", procs_path)
        sw_p = _required(procs, "SW_p", procs_path)
        acqus = _read_par(expdir / "acqus") if (expdir / "acqus").is_file() else {}
        sf = to_float(procs.get("SF")) or to_float(acqus.get("BF1"))
        if sf is None or not (0 < sf <= 2000) or si <= 0 or sw_p <= 0:
            raise ReaderError(f"implausible processing parameters SF = {sf} MHz, SI = {si}, SW_p = {sw_p} Hz",
                              procs_path)
        ws, isfloat = _word_size(procs.get("DTYPP", 0), procs_path)
        big = int(to_float(procs.get("BYTORDP")) or 0) == 1
        comps = []
        for name in ("1r", "1i"):
            f = pdir / name
            if not f.is_file():
                continue
            size = f.stat().st_size
            if size != si * ws:
                raise ReaderError(f"file size {size} B does not match SI = {si} values of {ws} B (truncated?)", f)
            try:
                # procs parsed above (tolerant decoding); nmrglue scales by 2**NC_proc from it
                _, d = ng.bruker.read_pdata(str(pdir), bin_files=[name], read_acqus=False, read_procs=False,
                                            scale_data=False, shape=(si,), big=big, isfloat=isfloat)
                d = ng.bruker.scale_pdata({"procs": procs}, d)
            except Exception as exc:
                raise ReaderError(f"nmrglue could not read the data: {type(exc).__name__}: {exc}", f) from exc
            comps.append(np.asarray(d, dtype=float).reshape(-1))
        values = comps[0] + 1j * comps[1] if len(comps) == 2 else comps[0]
        ppm = pdata_ppm_axis(offset, sw_p, sf, si)
        acq = self._acquisition(acqus, procs) if acqus else acquisition_dict(sf_mhz=sf)
        if acqus:
            check_acquisition(acq, expdir / "acqus", time_domain=False)
        md = self._metadata(acqus) if acqus else {}
        return new_measurement(
            values, [("shift", ppm, "ppm")], technique="nmr", units="arb", signal_type="spectrum",
            sample=self._sample(expdir, pdir), metadata=md, acquisition=acq,
            original_metadata=jsonable({"acqus": acqus, "procs": procs}),
            provenance=file_provenance(pdir, self.name), source=str(r_path))
