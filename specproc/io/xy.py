"""Two-/three-column 2θ text patterns (``.xy``, ``.xye``, ``.csv``, ``.txt``) -> XRD measurement.

Columns: 2θ (deg), intensity, optional σ (esd of the intensity). Header lines, ``#``/``;``/``!``
comments and a column-name line are skipped; separators may be whitespace, comma or semicolon.
The σ column is kept as a non-dimension coordinate ``intensity_sigma`` on the ``two_theta`` dim
(same units as the values), so slicing the pattern slices its errors and processors can use it
as fit weights; it is absent when the file has two columns.

Bruker RAW (binary ``.raw``) is not read: the only PyPI candidates are ``xylib-py`` (C++ bindings,
last release 2020) and ``bruker-powderxrd-parser`` (new, unproven), neither a maintained
reader specproc can depend on. Export RAW to ``.xy`` from DIFFRAC.EVA (or XRDML) instead.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.errors import ReaderError
from ._xrd import check_size, validate_pattern
from .base import Reader, head_bytes, head_text, require_file
from .xrdml import DEFAULT_KALPHA2_NM, DEFAULT_KALPHA2_RATIO, DEFAULT_WAVELENGTH_NM

#: Kα1, Kα2 (nm) of common anodes (Hölzer et al., Phys. Rev. A 56 (1997) 4554).
KNOWN_KALPHA = {"Cu": (0.15405980, 0.15444260), "Co": (0.17889960, 0.17928350), "Mo": (0.07093171, 0.07135900)}

_SPLIT = re.compile(r"[\s,;]+")
_TT_HEADER = re.compile(r"2\s*-?\s*th(eta)?|two[\s_-]*theta|2θ", re.I)
_WL_HEADER = re.compile(r"(wavelength|lambda|λ)\s*[=:]\s*([0-9.]+)\s*(nm|a|å|angstrom)?", re.I)
#: a coupled scan axis named in the header (e.g. xrayutilities' ``# TwoThetaOmega  Intensity``): kept as
#: ``acquisition["scan_axis"]`` like the XRDML/RAS readers' (a specular ω-2θ scan: reflectivity or epitaxy)
_AXIS_HEADER = re.compile(r"(two\s*theta\s*[-/_]?\s*omega|2\s*-?\s*theta\s*[-/_]\s*omega|"
                          r"omega\s*[-/_]\s*2\s*-?\s*theta|two\s*theta\s*[-/_]?\s*theta|2\s*-?\s*theta\s*[-/_]\s*theta|"
                          r"theta\s*[-/_]\s*2\s*-?\s*theta)", re.I)


def _numeric_row(line: str):
    parts = [p for p in _SPLIT.split(line.strip()) if p]
    if len(parts) < 2:
        return None
    try:
        return [float(p) for p in parts]
    except ValueError:
        return None


def _separator(path, n_skip):
    """The column separator of the first data line: comma, semicolon or whitespace."""
    with open(path, encoding="latin-1") as fh:
        for i, ln in enumerate(fh):
            if i == n_skip:
                return "," if "," in ln else (";" if ";" in ln else None)
    return None


def _read_block(path, n_skip, ncol, first_line_sep=None):
    """The numeric block after ``n_skip`` header lines as an (n, ncol) float array.

    numpy's C parser streams the file into the float64 array (:func:`specproc.io.text.load_table`:
    peak memory ~ the result, no per-line Python objects). Trailing comment lines (``#``) are
    ignored; a non-numeric or ragged line is a ReaderError naming its line.
    """
    from .text import load_table

    data = load_table(path, path, skiprows=n_skip, delimiter=first_line_sep,
                      columns=f"{ncol} columns like the first data row")
    if data.shape[1] != ncol:
        raise ReaderError(f"rows have different numbers of columns [{ncol}, {data.shape[1]}]", path)
    if not np.all(np.isfinite(data)):
        raise ReaderError(f"{int(np.sum(~np.isfinite(data)))} NaN/inf values (empty or non-numeric fields)", path)
    return data


class XYReader(Reader):
    """Plain-text 2θ patterns: two (2θ, I) or three (2θ, I, σ) columns."""

    name = "xrd-text"
    priority = Reader.COLUMNS
    library = "specproc"
    description = "2θ text patterns (.xy/.xye/.csv/.txt): 2θ [deg], intensity, optional σ"
    technique = "xrd"
    extensions = (".xy", ".xye")
    url = ""

    def guess_can_open(self, path: Path) -> bool:
        path = Path(path)
        if not path.is_file():
            return False
        text = head_text(path, 4096)
        lines = [ln for ln in text.splitlines()[:-1] if ln.strip()]  # last line may be cut
        numeric = [r for r in (_numeric_row(ln) for ln in lines) if r is not None]
        if not numeric or len({len(r) for r in numeric}) != 1 or len(numeric[0]) not in (2, 3):
            return False
        if path.suffix.lower() in (".xy", ".xye"):
            return True
        # .csv/.txt only when a header names 2theta (CSV is also FTIR, XPS...)
        header = [ln for ln in lines if _numeric_row(ln) is None]
        return any(_TT_HEADER.search(ln) for ln in header)

    def read(self, path: Path, wavelength_nm: float | None = None, sample: str | None = None):
        """Read a 2θ text pattern.

        Parameters
        ----------
        path : Path
        wavelength_nm : float, optional
            Kα1 wavelength (nm). Default: a ``wavelength = ...`` header line (Å or nm), else
            Cu Kα1 0.15405980 nm with ``acquisition["wavelength_source"] = "default"``.
        sample : str, optional
            Sample name (default: file stem).

        Returns
        -------
        xarray.DataArray
            dim ``two_theta`` (deg); coordinate ``intensity_sigma`` when a σ column exists.
        """
        from ..core.measurement import new_measurement
        from ..core.provenance import file_provenance

        path = require_file(Path(path))
        check_size(path)
        if b"\x00" in head_bytes(path, 8192):  # before the line scan below walks a binary file
            raise ReaderError("not a text file (binary content)", path)
        header, n_skip, first = [], 0, None
        # header lines by hand (few), the data block through numpy's C parser (bounded memory, fast)
        with open(path, encoding="latin-1") as fh:  # latin-1 never fails; metadata only
            for ln in fh:
                s = ln.strip()
                if s and s[0] not in "#;!%":
                    first = _numeric_row(s)
                    if first is not None:
                        break
                if s:
                    header.append(s)
                n_skip += 1
        if "\x00" in "".join(header[:5]):
            raise ReaderError("not a text file", path)
        if first is None:
            raise ReaderError("no numeric data rows (empty pattern)", path)
        ncol = len(first)
        if ncol not in (2, 3):
            raise ReaderError(f"{ncol} columns; expected 2 (2θ, I) or 3 (2θ, I, σ)", path)
        data = _read_block(path, n_skip, ncol, first_line_sep=_separator(path, n_skip))
        # contiguous columns, then the (n, ncol) block is released: a 3M-point pattern is 24 MB a
        # column, and every copy of the block (strided views, argsort, fancy indexing) counted
        cols = [np.ascontiguousarray(data[:, j]) for j in range(ncol)]
        del data
        tt, y = cols[0], cols[1]
        d = np.diff(tt)
        if len(tt) > 1 and not (np.all(d > 0) or np.all(d < 0)):
            raise ReaderError("first column is not monotonic; not a 2θ axis", path)
        del d
        if tt.min() < 0 or tt.max() > 180:
            raise ReaderError(f"first column spans {tt.min():g}..{tt.max():g}, outside 0..180 deg 2θ", path)
        validate_pattern(tt, y, path)
        if tt.size > 1 and tt[0] > tt[-1]:  # strictly monotonic (checked): reversing sorts it
            cols = [c[::-1].copy() for c in cols]
            tt, y = cols[0], cols[1]
        sig = cols[2] if ncol == 3 else None
        source = "user" if wavelength_nm is not None else "default"
        wl, k2, ratio = wavelength_nm, DEFAULT_KALPHA2_NM, DEFAULT_KALPHA2_RATIO
        for h in header:
            m = _WL_HEADER.search(h)
            if m and wavelength_nm is None:
                v = float(m.group(2))
                unit = (m.group(3) or "").lower()
                wl = v if unit == "nm" or (not unit and v < 0.5) else v / 10.0
                source, k2, ratio = "file", None, None
                break
        if wl is None:
            wl = DEFAULT_WAVELENGTH_NM
        k2_source = "default" if source == "default" else None
        if source != "default":
            k2, ratio = None, None
            # a Kα1 wavelength of a common anode implies its Kα2 line (Hölzer et al. 1997)
            for a1, a2 in KNOWN_KALPHA.values():
                if abs(wl - a1) < 2e-6:
                    k2, ratio, k2_source = a2, 0.5, "assumed from the Kα1 wavelength"
        axis = next((m.group(1) for m in (_AXIS_HEADER.search(h) for h in header) if m), None)
        acquisition = {"wavelength_nm": float(wl), "kalpha2_nm": k2, "kalpha2_ratio": ratio,
                       "wavelength_source": source, "kalpha2_source": k2_source, "anode": None, "counting_time_s": None,
                       "step_deg": float(np.median(np.diff(tt))), "n_columns": ncol, "scan_axis": axis}
        da = new_measurement(y, [("two_theta", tt, "deg")], technique="xrd", units="counts",
                             signal_type="pattern", sample=sample or path.stem, acquisition=acquisition,
                             original_metadata={"header": header}, provenance=file_provenance(path, self.name),
                             source=str(path))
        if sig is not None:
            if not np.all(np.isfinite(sig)):
                raise ReaderError("NaN/inf in the σ column", path)
            da = da.assign_coords(intensity_sigma=("two_theta", sig, {"units": "counts"}))
        return da
