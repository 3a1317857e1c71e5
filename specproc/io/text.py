"""Two-column NMR spectra as CSV / text (``ppm,intensity`` or ``hz,intensity``).

Format::

    # nucleus: 11B          (optional comment lines "# key: value")
    # sf_mhz: 128.38        (required for an Hz axis)
    ppm,intensity           (header; comma, tab, semicolon or spaces)
    10.0,0.01
    ...

Only the header (the ``# key: value`` lines and the column names) is read here, decoded as
UTF-8 and else Latin-1 (instrument exports are often cp1252: a comment never makes the file
unreadable). A file up to :data:`IN_MEMORY_MAX` is read once: its bytes give the header, the
SHA-256 of the provenance and the numbers. The numbers go through pyarrow's C++ CSV parser
(~0.2 ms per 4,096-point spectrum, correctly rounded like numpy's) when the data block is plain
(one of ``, ; tab``, no comments, no quotes, two or more equal columns, every value a number);
anything else - every error, so messages keep their file line numbers, and every larger file -
goes through :func:`load_table` (:func:`numpy.loadtxt`'s C parser, ~1.5 ms), which streams the
file into the float64 array: peak memory ~1x the file instead of the bytes, the arrow table and
the copy (~3.5x).

:func:`load_table` is also the column parser of the IR (``ir_text``) and 2θ (``xy``) text readers.
"""
from __future__ import annotations

import functools
import io
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ReaderError
from ..core.measurement import new_measurement
from ..core.provenance import file_provenance
from ._nmr_axis import acquisition_dict, decode_text, normalise_nucleus, to_float
from .base import Reader, first_content_line, require_file

_SEP = re.compile(r"\s*[,;\t]\s*|\s+")
_AXES = {"ppm": "ppm", "delta": "ppm", "shift": "ppm", "shift_ppm": "ppm", "ppm_shift": "ppm", "chemical_shift": "ppm",
         "hz": "hz", "freq_hz": "hz", "frequency_hz": "hz", "frequency": "hz", "offset_hz": "hz"}


def _axis_kind(name: str) -> str | None:
    s = name.strip().strip('"\'').lower().replace(" ", "_")
    s = re.sub(r"[\[\](){}]", "_", s).strip("_")
    s = re.sub(r"_+", "_", s)
    if s in _AXES:
        return _AXES[s]
    if s.endswith("_ppm") or s.startswith("ppm"):
        return "ppm"
    if s.endswith("_hz") or s.startswith("hz"):
        return "hz"
    return None


def _loadtxt_reason(exc: ValueError, n_head: int, columns: str = "2 columns") -> str:
    """numpy's loadtxt message with file line numbers (it counts rows after ``skiprows``)."""
    msg = str(exc)
    m = re.search(r"(?:at )?row (\d+)", msg)
    if m:
        line = int(m.group(1)) + n_head + 1
        if "columns" in msg or "usecols" in msg or "index" in msg:
            return f"line {line - 1}: expected {columns}"  # numpy counts these rows from 1
        val = re.search(r"string (.+?) to float", msg)
        col = re.search(r"column (\d+)", msg)
        shown = (val.group(1) if val else "")[:40]
        return (f"line {line}: non-numeric value {shown}".rstrip()
                + (f" in column {col.group(1)}" if col else ""))
    if "columns" in msg:
        return f"expected {columns} on every data line"
    return "a data line is not a row of numbers"


def load_table(source, path: Path, *, skiprows: int, delimiter: str | None, usecols=None,
               quotechar: str | None = None, columns: str = "2 columns") -> np.ndarray:
    """The numeric block of a text file as a 2-D float64 array, through numpy's C parser.

    :func:`numpy.loadtxt` (numpy >= 1.23) parses the file in chunks straight into the float64
    result: no per-line Python objects, peak memory about the result (~0.8x the text of a
    two-column file), ~0.25 s per million rows. The caller has checked that at least one data
    line follows ``skiprows`` (so loadtxt never warns about an empty input: no process-wide
    ``warnings`` filter is needed while other threads read).

    Parameters
    ----------
    source : path or binary file
    path : Path
        For the error message.
    skiprows : int
        Physical lines before the data (header, comments, blank lines).
    delimiter : str or None
        Column separator; None for runs of whitespace.
    usecols : tuple of int, optional
    quotechar : str, optional
        Quote character around fields (``'"'`` for spreadsheet CSV).
    columns : str
        What a row must hold, for the message of a short row (``"2 columns"``).

    Raises
    ------
    ReaderError
        A non-numeric field or a row with too few / a changing number of columns, naming its line.
    """
    try:
        return np.loadtxt(source, delimiter=delimiter, comments="#", skiprows=skiprows, usecols=usecols,
                          ndmin=2, encoding="latin-1", dtype=np.float64, quotechar=quotechar)
    except ValueError as exc:
        raise ReaderError(f"data rows: {_loadtxt_reason(exc, skiprows, columns)}", path) from None


def _split(line: str) -> list[str]:
    return [t for t in _SEP.split(line.strip()) if t != ""]


#: files up to this size are read into memory once (header, SHA-256 and numbers from the same
#: bytes: the fast path for batches of ordinary spectra, ~100 kB each); larger ones are streamed
#: (numpy.loadtxt, memory ~ the result). Held in memory, a file costs ~3.5x its size (bytes, arrow
#: table, float copy): a 64 MiB limit let a 40 MB CSV peak at 140 MB above the interpreter.
IN_MEMORY_MAX = 4 << 20


def _lines_of(data: bytes):
    """``(line, offset)`` of ``data`` split like iterating a binary file (on b"\\n", kept)."""
    pos, n = 0, len(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        end = n if nl < 0 else nl + 1
        yield data[pos:end], pos
        pos = end


def _header(lines, p: Path):
    """``(meta, header tokens, first data line, lines before it, its byte offset)``.

    ``lines`` yields raw lines (a binary file) or ``(line, offset)`` pairs (:func:`_lines_of`).
    """
    meta: dict[str, str] = {}
    header: list[str] | None = None
    first_data = ""
    n_head = 0
    start = None
    for item in lines:
        raw, at = item if isinstance(item, tuple) else (item, None)
        n_head += 1
        if b"\x00" in raw:
            raise ReaderError("not a text file (binary content)", p)
        s = decode_text(raw).strip().lstrip("\ufeff")
        if not s:
            continue
        if s.startswith("#"):
            m = re.match(r"#\s*([A-Za-z_][\w .]*?)\s*[:=]\s*(.*)$", s)
            if m:
                meta[m.group(1).strip().lower().replace(" ", "_")] = m.group(2).strip()
            continue
        toks = _split(s)
        if header is None:
            if len(toks) < 2 or _axis_kind(toks[0]) is None:
                raise ReaderError(f"line {n_head}: expected a header like 'ppm,intensity' or 'hz,intensity', "
                                  f"got {s[:60]!r}", p)
            header = toks
            continue
        first_data = s
        start = at
        n_head -= 1
        break
    if header is None:
        raise ReaderError("no header line (expected 'ppm,intensity' or 'hz,intensity')", p)
    if not first_data:
        raise ReaderError("no data rows after the header", p)
    return meta, header, first_data, n_head, start


def _plain_numbers(data: bytes, start: int | None, delim: str):
    """The first two columns of a plain data block through pyarrow's CSV parser, or None.

    Plain: no comment or quote character, every row the same number (>= 2) of fields, every value
    of the two columns a number. pyarrow parses numbers exactly as numpy does (correct rounding,
    ``nan`` / ``inf``, no ``1_0`` or hex); any other block returns None and numpy.loadtxt reads it
    (with its error messages).
    """
    if start is None:
        return None
    if data.find(b"#", start) >= 0 or data.find(b'"', start) >= 0:
        return None
    body = memoryview(data)[start:]
    try:
        import pyarrow as pa
        from pyarrow import csv as pacsv
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    try:
        # the streaming reader: single-threaded by design, half the overhead of read_csv on
        # small files (~0.25 ms for 4,096 rows)
        read_opts, parse_opts, convert_opts = _arrow_options(delim)
        t = pacsv.open_csv(pa.BufferReader(pa.py_buffer(body)), read_options=read_opts, parse_options=parse_opts,
                           convert_options=convert_opts).read_all()
    except (pa.ArrowException, ValueError, KeyError):
        return None
    if t.num_rows == 0 or t.num_columns != 2 or any(c.null_count for c in t.columns):
        return None
    cols = np.empty((2, t.num_rows))  # writable, like loadtxt's; each column contiguous
    cols[0] = t.column(0).to_numpy()
    cols[1] = t.column(1).to_numpy()
    return cols.T


@functools.lru_cache(maxsize=None)
def _arrow_options(delim: str):
    """pyarrow's CSV options for a two-float-column block (made once per delimiter)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    return (pacsv.ReadOptions(use_threads=False, autogenerate_column_names=True),
            pacsv.ParseOptions(delimiter=delim, quote_char=False, ignore_empty_lines=True),
            pacsv.ConvertOptions(column_types={"f0": pa.float64(), "f1": pa.float64()}, include_columns=["f0", "f1"],
                                 null_values=[], strings_can_be_null=False))


class NMRTextReader(Reader):
    """Two-column CSV/text NMR spectrum with a ``ppm``/``hz`` header."""

    name: ClassVar[str] = "nmr-text"
    priority: ClassVar[int] = Reader.COLUMNS
    library: ClassVar[str] = "specproc (pyarrow csv)"
    description: ClassVar[str] = "two-column CSV/text NMR spectrum (header ppm|hz,intensity; '# nucleus:', '# sf_mhz:')"
    technique: ClassVar[str] = "nmr"
    extensions: ClassVar[tuple[str, ...]] = ()  # .csv/.txt are too generic: content sniffing only
    url: ClassVar[str] = ""

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        if not p.is_file():
            return False
        s = first_content_line(p, 8192)
        if s is None:
            return False
        toks = _split(s)
        return len(toks) >= 2 and _axis_kind(toks[0]) is not None and to_float(toks[0]) is None

    def read(self, path: Path) -> Any:
        """Read a two-column NMR spectrum.

        Parameters
        ----------
        path : Path
            Text file (any extension).

        Returns
        -------
        xarray.DataArray
            Spectrum, dim ``("shift",)`` in ppm, ``signal_type="spectrum"``.
        """
        p = require_file(Path(path), "text file")
        data = None
        if p.stat().st_size <= IN_MEMORY_MAX:
            with open(p, "rb") as fh:
                data = fh.read()
            meta, header, first_data, n_head, start = _header(_lines_of(data), p)
        else:
            with open(p, "rb") as fh:
                meta, header, first_data, n_head, start = _header(fh, p)
        delim = next((d for d in (",", ";", "\t") if d in first_data), None)
        arr = _plain_numbers(data, start, delim) if data is not None and delim is not None else None
        if arr is None:
            # _header found a data line, so loadtxt never warns about an empty input
            with (io.BytesIO(data) if data is not None else open(p, "rb")) as fh:
                arr = load_table(fh, p, skiprows=n_head, delimiter=delim, usecols=(0, 1))
        if arr.shape[0] == 0:
            raise ReaderError("no data rows after the header", p)
        x, y = arr[:, 0], arr[:, 1]
        bad = None if np.isfinite(arr).all() else ~np.isfinite(arr).all(axis=1)  # the row scan only on failure
        if bad is not None:
            raise ReaderError(f"{int(bad.sum())} row(s) with NaN/inf values (first at data row "
                              f"{int(np.argmax(bad)) + 1})", p)
        sf = to_float(meta.get("sf_mhz") or meta.get("sf") or meta.get("observe_frequency"))
        if sf is not None and not (0 < sf <= 2000):
            raise ReaderError(f"implausible sf_mhz = {sf} MHz", p)
        kind = _axis_kind(header[0])
        if kind == "hz":
            if sf is None:
                raise ReaderError("x axis is in Hz but no '# sf_mhz: <MHz>' line is given (cannot convert to ppm)", p)
            x = x / sf
        sw = abs(x[-1] - x[0]) * sf * x.size / max(x.size - 1, 1) if sf else None
        acq = acquisition_dict(sfo1_mhz=to_float(meta.get("sfo1_mhz")) or sf, sf_mhz=sf, sw_hz=sw,
                               mas_rate_hz=meta.get("mas_rate_hz") or meta.get("mas_hz"))
        md = {"nucleus": normalise_nucleus(meta.get("nucleus")), "instrument": meta.get("instrument"),
              "date": meta.get("date")}
        return new_measurement(
            y, [("shift", x, "ppm")], technique="nmr", units="arb", signal_type="spectrum",
            sample=meta.get("sample") or p.stem, metadata=md, acquisition=acq,
            original_metadata={"header": header, "comments": meta, "x_units_in_file": kind},
            provenance=file_provenance(p, self.name, content=data), source=str(p))
