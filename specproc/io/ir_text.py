"""Two-column IR spectra as CSV / text with a header naming the columns.

Format::

    # sample: LiBH4             (optional comment lines "# key: value": sample, instrument,
    # resolution_cm1: 4         resolution_cm1, date)
    wavenumber_cm-1,absorbance  (header; comma, tab, semicolon or whitespace separated)
    4000.0,0.0123
    ...

The first header column must name the axis: ``wavenumber``/``cm-1``/``1/cm`` (wavenumbers) or
``wavelength_um``/``micrometre`` (converted); the second the ordinate: ``absorbance``, or
``transmittance`` / ``%T`` / ``T`` (percent or fraction decided as in the JCAMP reader: the
header when it says ``%``, else the data). The header and the ``# key: value`` lines above it
are read here line by line; the numbers go through :func:`specproc.io.text.load_table` (numpy's
C parser streaming into the float64 array: no per-line Python objects, peak memory about the
file's size — pandas' Python engine on the whole text took 24x). The axis is sorted ascending.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ReaderError
from ..core.measurement import new_measurement
from ..core.provenance import file_provenance
from ._ir import ir_ordinates
from ._nmr_axis import decode_text
from .base import Reader, first_content_line, require_file
from .text import load_table

_SEP = re.compile(r"\s*[,;\t]\s*|\s+")
_META = re.compile(r"#\s*([A-Za-z_][\w .]*?)\s*[:=]\s*(.*)$")


def _tok(s: str) -> str:
    return s.strip().strip("\"'").lower()


def axis_kind(name: str) -> str | None:
    """``"wavenumber"``, ``"micrometre"`` or None from a column name."""
    s = _tok(name).replace(" ", "")
    if re.search(r"wavenumber|cm-1|cm\^-1|1/cm|cm\*\*-1|cm⁻¹|^nu$|^wn$", s):
        return "wavenumber"
    if re.search(r"wavelength|micromet|µm|\bum\b|\(um\)|_um$|micron", s):
        return "micrometre"
    return None


def value_kind(name: str) -> tuple[str | None, str | None]:
    """(y_kind, "percent"|None) from a column name."""
    s = _tok(name).replace(" ", "")
    if s.startswith("abs") or s in ("a", "au", "a.u.") or s.startswith("absorbance"):
        return "absorbance", None
    if "%" in s or "percent" in s:
        if "t" in s or "trans" in s:
            return "transmittance", "percent"
    if s.startswith("trans") or s in ("t", "t_fraction"):
        return "transmittance", None
    return None, None


def _header(raw: str) -> tuple[int, list[str]] | None:
    """(line index, tokens) of the header line, or None."""
    for i, line in enumerate(raw.splitlines()):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        delim = next((c for c in (",", ";", "\t") if c in s), None)
        toks = [t.strip() for t in (s.split(delim) if delim else _SEP.split(s)) if t.strip()]
        if len(toks) >= 2 and axis_kind(toks[0]) and value_kind(toks[1])[0]:
            return i, toks
        return None
    return None


class IRTextReader(Reader):
    """Two-column CSV/text IR spectrum with a ``wavenumber,absorbance|transmittance`` header."""

    name: ClassVar[str] = "ir-text"
    priority: ClassVar[int] = Reader.COLUMNS
    library: ClassVar[str] = "specproc"
    description: ClassVar[str] = ("two-column CSV/text IR spectrum (header wavenumber|wavelength_um, "
                                  "absorbance|transmittance|%T; '# sample:' lines)")
    technique: ClassVar[str] = "ftir"
    extensions: ClassVar[tuple[str, ...]] = ()  # .csv/.txt are too generic: content sniffing only

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        if not p.is_file():
            return False
        line = first_content_line(p, 8192)
        return line is not None and _header(line) is not None

    def read(self, path: Path, y_kind: str | None = None) -> Any:
        """Read a two-column IR spectrum.

        Parameters
        ----------
        path : Path
            Text file (any extension).
        y_kind : {"absorbance", "transmittance"}, optional
            Override the kind named by the header.

        Returns
        -------
        xarray.DataArray
            dim ``("wavenumber",)`` in ``1/cm`` ascending; absorbance or transmittance fraction.
        """
        p = require_file(Path(path), "text file")
        meta: dict[str, str] = {}
        h = None
        n_skip = 0  # physical lines before the first data line
        has_data = False
        with open(p, "rb") as fh:
            for raw in fh:  # the header block only: a few lines
                if b"\x00" in raw:
                    raise ReaderError("not a text file (binary content)", p)
                s = decode_text(raw).strip()
                if s and not s.startswith("#") and h is not None:
                    has_data = True
                    break
                n_skip += 1
                if not s:
                    continue
                if s.startswith("#"):
                    m = _META.match(s)
                    if m:
                        meta[m.group(1).strip().lower().replace(" ", "_")] = m.group(2).strip()
                    continue
                h = _header(s)
                if h is None:
                    break
                hline = s
        if h is None:
            raise ReaderError("no header line naming the columns (expected e.g. 'wavenumber_cm-1,absorbance' "
                              "or 'wavenumber,%T')", p)
        if not has_data:
            raise ReaderError("no data rows after the header", p)
        _, toks = h
        sep = next((c for c in (",", ";", "\t") if c in hline), None)  # None: runs of whitespace
        arr = load_table(p, p, skiprows=n_skip, delimiter=sep, usecols=(0, 1), quotechar='"')
        finite = np.isfinite(arr).all(axis=1)
        if not finite.all():
            raise ReaderError(f"{int((~finite).sum())} row(s) with NaN/inf/missing values (first at data row "
                              f"{int(np.argmax(~finite)) + 1})", p)
        if arr.shape[0] < 3:
            raise ReaderError(f"only {arr.shape[0]} data rows", p)
        x, y = arr[:, 0], arr[:, 1]
        if axis_kind(toks[0]) == "micrometre":
            if np.any(x <= 0):
                raise ReaderError("non-positive wavelengths", p)
            x = 1.0e4 / x
        if np.any(x <= 0) or np.max(x) > 1e5:
            raise ReaderError(f"wavenumbers {x.min():.6g}..{x.max():.6g} 1/cm are not physical", p)
        kind, declared = value_kind(toks[1])
        if y_kind is not None:
            if y_kind not in ("absorbance", "transmittance"):
                raise ReaderError(f"y_kind must be 'absorbance' or 'transmittance', not {y_kind!r}", p)
            kind, declared = y_kind, None
        x, y, scale = ir_ordinates(x, y, kind, declared, p, claim=f"column {toks[1]!r} says absorbance",
                                   axis="axis column")
        res = meta.get("resolution_cm1") or meta.get("resolution")
        try:
            res = float(res) if res is not None else None
        except ValueError:
            res = None
        acq = {"y_kind": kind, "y_scale": scale, "resolution_cm1": res, "columns": toks[:2]}
        md = {"instrument": meta.get("instrument"), "date": meta.get("date")}
        return new_measurement(
            y, [("wavenumber", x, "1/cm")], technique="ftir", units="dimensionless", name=kind,
            signal_type="spectrum", sample=meta.get("sample") or p.stem, metadata=md, acquisition=acq,
            original_metadata={"header": toks, "comments": meta}, provenance=file_provenance(p, self.name),
            source=str(p))

