"""Two-column NMR spectra as CSV / text (``ppm,intensity`` or ``hz,intensity``).

Format::

    # nucleus: 11B          (optional comment lines "# key: value")
    # sf_mhz: 128.38        (required for an Hz axis)
    ppm,intensity           (header; comma, tab, semicolon or spaces)
    10.0,0.01
    ...

Hand-written because the format is a two-column table plus a few ``# key: value`` lines;
pandas would parse the table but not the comments we need, and numpy does the numbers.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ReaderError
from ..core.measurement import new_measurement
from ..core.provenance import file_provenance
from ._nmr_axis import acquisition_dict, normalise_nucleus, to_float
from .base import Reader, head_text, require_file

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


def _split(line: str) -> list[str]:
    return [t for t in _SEP.split(line.strip()) if t != ""]


class NMRTextReader(Reader):
    """Two-column CSV/text NMR spectrum with a ``ppm``/``hz`` header."""

    name: ClassVar[str] = "nmr-text"
    description: ClassVar[str] = "two-column CSV/text NMR spectrum (header ppm|hz,intensity; '# nucleus:', '# sf_mhz:')"
    technique: ClassVar[str] = "nmr"
    extensions: ClassVar[tuple[str, ...]] = ()  # .csv/.txt are too generic: content sniffing only
    url: ClassVar[str] = ""

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        if not p.is_file():
            return False
        raw = head_text(p, 8192)
        if "\x00" in raw:
            return False
        for line in raw.splitlines():
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            toks = _split(s)
            return len(toks) >= 2 and _axis_kind(toks[0]) is not None and to_float(toks[0]) is None
        return False

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
        try:
            lines = p.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError:
            raise ReaderError("not a text file (cannot decode as UTF-8)", p) from None
        meta: dict[str, str] = {}
        header: list[str] | None = None
        rows: list[tuple[float, float]] = []
        for ln, line in enumerate(lines, 1):
            s = line.strip()
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
                    raise ReaderError(f"line {ln}: expected a header like 'ppm,intensity' or 'hz,intensity', "
                                      f"got {s[:60]!r}", p)
                header = toks
                continue
            if len(toks) < 2:
                raise ReaderError(f"line {ln}: expected 2 columns, got {len(toks)}", p)
            try:
                rows.append((float(toks[0]), float(toks[1])))
            except ValueError:
                raise ReaderError(f"line {ln}: non-numeric value in {s[:60]!r}", p) from None
        if header is None:
            raise ReaderError("no header line (expected 'ppm,intensity' or 'hz,intensity')", p)
        if not rows:
            raise ReaderError("no data rows after the header", p)
        arr = np.asarray(rows, dtype=float)
        x, y = arr[:, 0], arr[:, 1]
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
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
            provenance=file_provenance(p, self.name), source=str(p))
