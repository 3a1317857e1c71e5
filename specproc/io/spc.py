"""Galactic / Thermo GRAMS SPC spectra (``*.spc``) through the maintained ``spc-io`` package.

``spc-io`` (https://github.com/h2020charisma/spc-io) parses the binary layout: the 512-byte
main header, the optional global X array, the subfiles (their headers, X and Y arrays, integer
Y scaled by ``2**(exp - 32)`` / ``2**(exp - 16)`` or IEEE floats), the directory and the log
book. What this reader adds: checks before and after the parse (the version byte, a file cut
short, NaN, absurd axes), the IR meaning of the axis and value types (``fxtype`` wavenumber /
micrometre / nanometre -> 1/cm ascending; ``fytype`` absorbance / transmittance / %, Kubelka-Munk,
log(1/R)), the resolution text and the subfile choice.

Not read (clear errors naming the export to use): the big-endian (``0x4C``) and old
(``0x4D``) SPC versions, which spc-io does not support, and ``TRANDM`` files.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ReaderError
from ..core.measurement import new_measurement
from ..core.provenance import file_provenance
from .base import Reader, head_bytes, require_file
from ._ir import ir_ordinates

_VERSIONS = {0x4B: "new LSB", 0x4C: "new MSB (big-endian)", 0x4D: "old (pre-1996)"}
_EXPORT = "export the spectrum as JCAMP-DX (.jdx) or CSV from the instrument software"
#: SPC fytype -> (y_kind, transmittance scale declared, note)
_Y_KINDS = {
    "YABSRB": ("absorbance", None, None),
    "YTRANS": ("transmittance", None, None),
    "YPERCNT": ("transmittance", "percent", "y type 'percent' read as %T"),
    "YKMONK": ("kubelka_munk", None, None),
    "YLOGDR": ("absorbance", None, "y type log(1/R) (diffuse reflectance) read as absorbance"),
    "YREFLEC": ("reflectance", None, None),
    "YIGRAM": ("interferogram", None, None),
}


class SpcReader(Reader):
    """Galactic/Thermo SPC spectrum (one subfile) -> FTIR absorbance or transmittance."""

    name: ClassVar[str] = "spc"
    priority: ClassVar[int] = Reader.SIGNATURE
    library: ClassVar[str] = "spc-io"
    description: ClassVar[str] = ("Galactic / Thermo GRAMS SPC spectrum (new LSB format; evenly spaced or XY "
                                  "subfiles; wavenumber / micrometre / nanometre axes) via spc-io")
    technique: ClassVar[str] = "ftir"
    extensions: ClassVar[tuple[str, ...]] = (".spc",)
    url: ClassVar[str] = "https://github.com/h2020charisma/spc-io"

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        if not p.is_file() or not self.matches_extension(p):
            return False
        head = head_bytes(p, 4)
        return len(head) >= 2 and head[1] in _VERSIONS

    def read(self, path: Path, subfile: int = 0, y_kind: str | None = None) -> Any:
        """Read one subfile of an SPC file.

        Parameters
        ----------
        path : Path
            ``*.spc`` file.
        subfile : int
            Index of the subfile to read (multi-spectrum files; default the first).
        y_kind : {"absorbance", "transmittance"}, optional
            Override the value type of the header (needed when it says "arbitrary").

        Returns
        -------
        xarray.DataArray
            dim ``("wavenumber",)`` in ``1/cm`` ascending; ``acquisition["y_kind"]``, ``y_scale``,
            ``resolution_cm1`` (from the header's resolution text when it is a number).
        """
        import io
        import logging

        p = require_file(Path(path), "SPC file")
        data = p.read_bytes()
        if len(data) < 512:
            raise ReaderError(f"truncated: {len(data)} bytes, an SPC main header alone is 512", p)
        ver = data[1]
        if ver not in _VERSIONS:
            raise ReaderError(f"not an SPC file (version byte 0x{ver:02X}, expected 0x4B/0x4C/0x4D)", p)
        if ver != 0x4B:
            raise ReaderError(f"SPC {_VERSIONS[ver]} format is not supported by spc-io; {_EXPORT}", p)
        if y_kind is not None and y_kind not in ("absorbance", "transmittance"):
            raise ReaderError(f"y_kind must be 'absorbance' or 'transmittance', not {y_kind!r}", p)
        from spc_io import SPC, SpcRaw

        log = logging.getLogger("spc_io")
        old = log.level
        log.setLevel(logging.ERROR)          # its "bytes left at the end" warning becomes a reader note
        try:
            raw = SpcRaw.from_bytes_io(io.BytesIO(data))
            spc = SPC.from_spc_raw(raw)
        except NotImplementedError as exc:
            raise ReaderError(f"unsupported SPC variant ({exc}); {_EXPORT}", p) from None
        except (ValueError, TypeError, IndexError, OverflowError, MemoryError) as exc:
            # ctypes' from_buffer_copy raises ValueError when the file ends inside a block; a header
            # count of zero or an absurd one makes spc-io index or allocate past the data
            raise ReaderError("truncated or corrupt SPC file (its header and data blocks do not agree)", p) from exc
        finally:
            log.setLevel(old)
        h = raw.main_header
        notes = []
        extra = len(getattr(raw, "_extra_bytes_at_eof", b"") or b"")
        if extra:
            notes.append(f"{extra} unread bytes after the last SPC block")
        n = len(spc)
        if n == 0:
            raise ReaderError("the file holds no subfile (no spectrum)", p)
        if not 0 <= subfile < n:
            raise ReaderError(f"subfile {subfile} requested, the file holds {n} (0..{n - 1})", p)
        if n > 1:
            notes.append(f"the file holds {n} subfiles; subfile {subfile} read (subfile=...)")
        sub = spc[subfile]
        x = np.asarray(sub.xarray, float)
        y = np.asarray(sub.yarray, float)
        if x.size != y.size or x.size < 3:
            raise ReaderError(f"subfile {subfile}: {x.size} x values for {y.size} y values", p)
        if not np.isfinite(y).all():
            raise ReaderError(f"subfile {subfile}: {int((~np.isfinite(y)).sum())} NaN/inf values", p)
        if not np.isfinite(x).all():
            raise ReaderError("NaN/inf in the x axis (header first/last X or X array corrupt)", p)
        xtype = str(h.fxtype)
        if xtype == "XWAVEN":
            pass
        elif xtype in ("XUMETR", "XNMETR"):
            if np.any(x <= 0):
                raise ReaderError("non-positive wavelengths", p)
            x = (1.0e4 if xtype == "XUMETR" else 1.0e7) / x
            notes.append(f"axis converted from {'micrometres' if xtype == 'XUMETR' else 'nanometres'} to 1/cm")
        elif xtype == "XRAMANS":
            raise ReaderError("x axis is a Raman shift: a Raman spectrum, not an IR one", p)
        elif xtype == "XARB" and 100 <= min(x[0], x[-1]) and max(x[0], x[-1]) <= 15000:
            notes.append("x axis type 'arbitrary': read as wavenumbers (values 100-15000)")
        else:
            raise ReaderError(f"x axis type {xtype!r} is not an IR axis (wavenumber / micrometre / nanometre)", p)
        if np.any(x <= 0) or np.max(x) > 1e5:
            raise ReaderError(f"wavenumbers {x.min():.6g}..{x.max():.6g} 1/cm are not physical", p)
        ytype = str(h.fytype)
        if y_kind is not None:
            kind, declared, note = y_kind, None, None
        elif ytype in _Y_KINDS:
            kind, declared, note = _Y_KINDS[ytype]
        elif ytype == "YARB":
            kind, declared = "absorbance", None
            note = "y type 'arbitrary' in the header: read as absorbance (pass y_kind='transmittance' if not)"
        else:
            raise ReaderError(f"y type {ytype!r} is not an IR spectrum (pass y_kind= to force)", p)
        if note:
            notes.append(note)
        x, y, scale = ir_ordinates(x, y, kind, declared, p, claim=f"y type {ytype!r} says absorbance",
                                   axis="axis")
        res_text = _text(h.fres)
        m = re.search(r"[-+]?\d+(?:\.\d*)?", res_text)
        res = float(m.group()) if m and 0 < float(m.group()) < 1000 else None
        date = spc.date.isoformat() if spc.date.year > 1970 else None
        comment = _text(h.fcmnt)
        acq = {"y_kind": kind, "y_scale": scale, "resolution_cm1": res, "reader_notes": notes,
               "spc_xtype": xtype, "spc_ytype": ytype}
        md = {"instrument": _text(h.fsource) or None, "date": date, "comment": comment or None}
        om = {"version": _VERSIONS[ver], "n_subfiles": n, "fres": res_text, "fcmnt": comment,
              "fsource": _text(h.fsource), "fexper": str(h.fexper), "log_text": _log_text(spc)}
        return new_measurement(
            y, [("wavenumber", x, "1/cm")], technique="ftir", units="dimensionless", name=kind,
            signal_type="spectrum", sample=p.stem, metadata=md, acquisition=acq, original_metadata=om,
            provenance=file_provenance(p, self.name), source=str(p))


def _text(b) -> str:
    """A NUL-terminated header string (bytes) as clean text."""
    if isinstance(b, bytes):
        b = b.split(b"\x00", 1)[0].decode("latin-1", errors="replace")
    return "".join(c for c in str(b) if c.isprintable()).strip()


def _log_text(spc) -> dict:
    try:
        t = spc.log_book.text
        return {str(k): str(v) for k, v in dict(t).items()} if t else {}
    except Exception:  # noqa: BLE001 - the log book is optional decoration
        return {}
