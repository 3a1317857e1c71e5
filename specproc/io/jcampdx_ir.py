"""JCAMP-DX infrared spectra (``##DATA TYPE= INFRARED SPECTRUM``) via the ``jcamp`` package.

Handled: ``##XYDATA=(X++(Y..Y))`` in plain (AFFN) or compressed (ASDF: SQZ / DIF / DUP / PAC)
form and ``##XYPOINTS=(XY..XY)``; X in ``1/CM`` or micrometres (converted to wavenumbers);
Y in ``ABSORBANCE`` or ``TRANSMITTANCE``. Whether a transmittance is in percent or a 0-1
fraction is decided from the header (``%T``, ``PERCENT``) and, when the header does not say,
from the data (values above 2 cannot be a fraction). Transmittance is always stored as a
fraction. The axis is sorted ascending whatever the file's direction.

``jcamp`` reports problems by printing (X/Y checks of compressed data, length mismatches)
instead of raising; its output is captured per thread (:mod:`specproc.core.quiet`) and turned
into errors (Y-check failure: corrupt compressed data; length mismatch: wrong ``##NPOINTS``) or
reader notes. A DOS end-of-file byte
(0x1A) after ``##END=`` (old test-disk files) is ignored; the file is never modified. ``$$`` comments
(``##YFACTOR= 0.01 $$ note``, legal JCAMP-DX) are removed before ``jcamp`` sees the text, and header
numbers it would divide or multiply by (``##NPOINTS= 0``, ``##XFACTOR= 0``) are refused first.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ReaderError
from ..core.measurement import new_measurement
from ..core.provenance import file_provenance
from ..core.quiet import quiet
from ._ir import ir_ordinates
from ._jcamp import (check_decoded_size, check_header_numbers, jcamp_head, ldr_value, norm_label, read_jcamp_text,
                     strip_comments)
from .base import Reader

_LABEL = re.compile(r"^##\s*([^=]+?)\s*=\s*(.*)$", re.M)




def _labels(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _LABEL.finditer(text):
        out.setdefault(norm_label(m.group(1)), ldr_value(m.group(2)))
    return out


def x_kind(xunits: str) -> str | None:
    """``"wavenumber"`` (1/CM), ``"micrometre"`` or None from an XUNITS string."""
    u = xunits.strip().upper().replace(" ", "")
    if u in ("1/CM", "CM-1", "CM^-1", "WAVENUMBERS", "WAVENUMBER", "CM**-1", "1/CENTIMETERS"):
        return "wavenumber"
    if u in ("MICROMETERS", "MICROMETRES", "MICRONS", "MICRON", "UM", "µM", "MICROMETER"):
        return "micrometre"
    return None


def y_kind_from_units(yunits: str) -> tuple[str | None, str | None]:
    """(``"absorbance"``/``"transmittance"``/None, ``"percent"``/``"fraction"``/None) from YUNITS."""
    u = yunits.strip().upper()
    if "ABSORBANCE" in u or u in ("A", "ABS", "AU", "A.U."):
        return "absorbance", None
    if "TRANSMIT" in u or u in ("%T", "T", "%TRANS"):
        pct = "%" in u or "PERCENT" in u
        return "transmittance", ("percent" if pct else None)
    return None, None


class JcampIRReader(Reader):
    """JCAMP-DX IR spectrum (plain / compressed XYDATA, XYPOINTS) -> absorbance or transmittance."""

    name: ClassVar[str] = "jcampdx-ir"
    priority: ClassVar[int] = Reader.HEADER
    library: ClassVar[str] = "jcamp"
    description: ClassVar[str] = ("JCAMP-DX infrared spectrum (XYDATA AFFN/ASDF, XYPOINTS; 1/CM or micrometres; "
                                  "absorbance or %T / 0-1 transmittance) via jcamp")
    technique: ClassVar[str] = "ftir"
    extensions: ClassVar[tuple[str, ...]] = (".jdx", ".dx", ".jcamp")
    url: ClassVar[str] = "https://github.com/nzhagen/jcamp"

    def guess_can_open(self, path: Path) -> bool:
        text = jcamp_head(path, 16384)
        if text is None:
            return False
        lab = _labels(text)
        dtype = lab.get("DATATYPE", "").upper()
        if dtype:
            return "INFRARED" in dtype or dtype.startswith("IR ")
        # no DATA TYPE (sloppy writers): IR axes and IR ordinates
        return (x_kind(lab.get("XUNITS", "")) is not None
                and y_kind_from_units(lab.get("YUNITS", ""))[0] is not None)

    def read(self, path: Path, y_kind: str | None = None) -> Any:
        """Read a JCAMP-DX IR spectrum.

        Parameters
        ----------
        path : Path
            ``.jdx``/``.dx`` file.
        y_kind : {"absorbance", "transmittance"}, optional
            Override when the file's ``##YUNITS`` is missing or wrong.

        Returns
        -------
        xarray.DataArray
            dim ``("wavenumber",)`` in ``1/cm`` ascending; values absorbance or transmittance
            fraction (``acquisition["y_kind"]``; ``acquisition["y_scale"]`` is the file's scale).
        """
        import jcamp

        p, text = read_jcamp_text(path)
        text = strip_comments(text)  # "##YFACTOR= 0.01 $$ note" is legal: the libraries choke on it
        end = re.search(r"^##\s*END\s*=.*$", text, re.M | re.I)
        if end is None:
            raise ReaderError("no ##END= label: file truncated or not JCAMP-DX", p)
        text = text[:end.end()] + "\n"   # drops a DOS EOF byte / trailing junk after ##END=
        lab = _labels(text)
        check_header_numbers(lab, p)
        dtype = lab.get("DATATYPE", "").upper()
        if dtype == "LINK":
            raise ReaderError("compound (LINK) JCAMP-DX files are not supported; extract one block", p)
        if dtype and not ("INFRARED" in dtype or dtype.startswith("IR ")):
            raise ReaderError(f"JCAMP-DX data type is {dtype!r}, not an infrared spectrum", p)
        if not any(k in lab for k in ("XYDATA", "XYPOINTS")):
            raise ReaderError("no ##XYDATA= or ##XYPOINTS= block", p)
        check_decoded_size(text, p)  # NPOINTS cap and DUP-count bomb, before jcamp decodes
        try:
            # jcamp reports by print(): caught per thread (never by swapping sys.stdout: core.quiet)
            with quiet(jcamp) as notes:
                d = jcamp.read(io.StringIO(text))
        except Exception:
            raise ReaderError("the data block cannot be decoded (corrupt compressed data, or header values "
                              "that contradict the data)", p) from None
        if any(n.startswith("Y-Check failed") for n in notes):
            raise ReaderError("compressed data are corrupt (DIF Y-check failed: "
                              f"{next(n for n in notes if n.startswith('Y-Check'))})", p)
        x = np.asarray(d.get("x", []), dtype=float).reshape(-1)
        y = np.asarray(d.get("y", []), dtype=float).reshape(-1)
        if y.size == 0:
            raise ReaderError("no data points", p)
        npoints = d.get("npoints")
        if isinstance(npoints, (int, float)) and int(npoints) != y.size:
            raise ReaderError(f"##NPOINTS={int(npoints)} but the data block holds {y.size} values", p)
        if x.size != y.size:
            raise ReaderError(f"x axis has {x.size} values for {y.size} data points", p)
        if not np.all(np.isfinite(y)) or not np.all(np.isfinite(x)):
            raise ReaderError(f"{int(np.sum(~np.isfinite(y)) + np.sum(~np.isfinite(x)))} NaN/inf values", p)
        if y.size < 3:
            raise ReaderError(f"only {y.size} data points", p)

        xunits = str(d.get("xunits", lab.get("XUNITS", "")))
        xk = x_kind(xunits)
        if xk is None:
            raise ReaderError(f"x units {xunits or '(none)'!r} are not 1/CM or MICROMETERS", p)
        if xk == "micrometre":
            if np.any(x <= 0):
                raise ReaderError("non-positive wavelengths on a micrometre axis", p)
            x = 1.0e4 / x
        if np.any(x <= 0) or np.max(x) > 1e5:
            raise ReaderError(f"wavenumbers {x.min():.6g}..{x.max():.6g} 1/cm are not physical", p)
        yunits = str(d.get("yunits", lab.get("YUNITS", "")))
        kind, declared = y_kind_from_units(yunits)
        if y_kind is not None:
            if y_kind not in ("absorbance", "transmittance"):
                raise ReaderError(f"y_kind must be 'absorbance' or 'transmittance', not {y_kind!r}", p)
            kind, declared = y_kind, None
        if kind is None:
            raise ReaderError(f"y units {yunits or '(none)'!r} are neither ABSORBANCE nor TRANSMITTANCE; "
                              "pass y_kind='absorbance' or 'transmittance'", p)
        x, y, scale = ir_ordinates(x, y, kind, declared, p, claim=f"YUNITS={yunits!r}")
        if kind == "transmittance" and declared == "percent" and scale == "fraction":
            notes.append("YUNITS says percent transmittance but all values are <= 2: read as a 0-1 fraction")

        def num(key):
            v = d.get(key)
            return float(v) if isinstance(v, (int, float)) else None

        acq = {"y_kind": kind, "y_scale": scale, "x_unit_file": xunits, "y_unit_file": yunits,
               "resolution_cm1": num("resolution"), "first_x": num("firstx"), "last_x": num("lastx"),
               "npoints": y.size, "xydata": d.get("xydata") or d.get("xypoints"),
               "reader_notes": notes}
        title = str(d.get("title") or "").strip()
        md = {"instrument": d.get("spectrometer/data system") or d.get("origin"),
              "date": str(d.get("longdate") or d.get("date") or "") or None}
        original = {k: (v if isinstance(v, (int, float, str)) else str(v))
                    for k, v in d.items() if k not in ("x", "y", "filename")}
        return new_measurement(
            y, [("wavenumber", x, "1/cm")], technique="ftir", units="dimensionless", name=kind,
            signal_type="spectrum", sample=title or p.stem, metadata=md, acquisition=acq,
            original_metadata=original, provenance=file_provenance(p, self.name), source=str(p))
