"""Thermo OMNIC spectra (``*.spa``) and spectrum groups (``*.spg``) through ``spectrochempy-omnic``.

``spectrochempy-omnic`` (https://github.com/spectrochempy/spectrochempy-omnic, CeCILL-B, numpy
only) is SpectroChemPy's OMNIC reader as a standalone package: it decodes the key directory at
byte 304 (16-byte lines: key 02 = spectrum header, 03 = intensities, 1B = history...), the header
(number of points, x and y unit codes, first/last x, scans) and the float32 intensities. It is an
optional extra (``pip install "specproc[omnic]"``): without it the files are recognised and the
error says what to install.

What this reader adds before the library runs (the library seeks to the offsets the file names
and loops until it meets a NUL byte, so a damaged file could make it read past the end or never
stop): the magic text, the key directory walked with bounds, the header and intensity blocks
inside the file, the intensity block length equal to the number of points. After: the IR meaning
of the unit codes (wavenumber / nm / µm -> 1/cm ascending; absorbance, %T, log(1/R),
Kubelka-Munk, reflectance, single beam), NaN (blanked regions) and axis checks.

Not read (clear errors): OMNIC series ``.srs`` (rapid-scan / TGA-IR series), interferograms,
Raman spectra.
"""
from __future__ import annotations

import logging
import struct
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ReaderError
from ..core.measurement import new_measurement
from ..core.provenance import file_provenance
from ._ir import ir_ordinates
from .base import Reader, head_bytes, require_file

MAGIC = b"Spectral Data File"
SERIES_MAGIC = b"Spectral Exte File"
_EXPORT = "export the spectrum as JCAMP-DX (.jdx), SPC or CSV from OMNIC"
_INSTALL = 'the OMNIC reader needs spectrochempy-omnic: pip install "specproc[omnic]"'
#: OMNIC y unit code (header byte +12) -> (y_kind, transmittance scale declared, note)
_Y_KINDS = {
    17: ("absorbance", None, None),
    16: ("transmittance", "percent", None),
    11: ("reflectance", None, "y unit 'reflectance (%)' read as given"),
    21: ("reflectance", None, None),
    12: ("absorbance", None, "y unit log(1/R) (diffuse reflectance) read as absorbance"),
    20: ("kubelka_munk", None, None),
    15: ("single_channel", None, None),
}
_REFUSED_Y = {22: "an interferogram (detector volts)", 31: "a Raman spectrum", 26: "a photoacoustic spectrum"}
#: x unit code (header byte +8) -> description; 1 wavenumber, 3 nm, 4 µm are IR axes
_REFUSED_X = {2: "data points (an interferogram)", 32: "a Raman shift (a Raman spectrum)"}


def _u32(data: bytes, pos: int) -> int:
    return struct.unpack_from("<I", data, pos)[0]


def check_layout(data: bytes, path, kind: str) -> list[tuple[int, int, int]]:
    """Walk the key directory of an ``.spa``/``.spg`` with bounds; return its ``(key, pos, size)``.

    Raises
    ------
    ReaderError
        When the magic text is missing, the directory runs past the end, or a header or
        intensity block named by it lies outside the file or disagrees with the header.
    """
    n = len(data)
    if data[:18] == SERIES_MAGIC:
        raise ReaderError(f"an OMNIC series file (.srs, 'Spectral Exte File') is not supported; {_EXPORT}", path)
    if data[:18] != MAGIC:
        raise ReaderError("not an OMNIC .spa/.spg file (no 'Spectral Data File' magic text)", path)
    if n < 320:
        raise ReaderError(f"truncated: {n} bytes, the OMNIC header and key directory alone take 320", path)
    lines: list[tuple[int, int, int]] = []
    if kind == "spg":
        nlines = struct.unpack_from("<H", data, 294)[0]
        if nlines == 0 or 304 + 16 * nlines > n:
            raise ReaderError(f"truncated or corrupt group: its directory of {nlines} lines does not fit "
                              f"in {n} bytes", path)
        for i in range(nlines):
            pos = 304 + 16 * i
            lines.append((data[pos], _u32(data, pos + 2), _u32(data, pos + 6)))
    else:
        pos = 304
        while True:
            if pos + 16 > n:
                raise ReaderError("truncated: the key directory runs past the end of the file", path)
            key = data[pos]
            if key in (0, 1):
                break
            lines.append((key, _u32(data, pos + 2), _u32(data, pos + 6)))
            pos += 16
    headers = [p for k, p, _ in lines if k == 2]
    blocks = [(p, s) for k, p, s in lines if k == 3]
    if not headers or not blocks:
        raise ReaderError("the key directory names no spectrum header (key 02) or no intensities (key 03): "
                          "not a spectrum file (an interferogram-only file?)", path)
    if len(headers) != len(blocks):
        raise ReaderError(f"corrupt group: {len(headers)} spectrum headers for {len(blocks)} intensity blocks", path)
    for (hp, (ip, isz)) in zip(headers, blocks):
        if hp + 212 > n:
            raise ReaderError(f"truncated: a spectrum header at byte {hp} lies past the end ({n} bytes)", path)
        npt = _u32(data, hp + 4)
        if ip + isz > n:
            raise ReaderError(f"truncated: the intensities (bytes {ip}-{ip + isz}) end past the end of the "
                              f"file ({n} bytes)", path)
        if npt < 3 or isz != 4 * npt:
            raise ReaderError(f"corrupt file: the header says {npt} points but the intensity block holds "
                              f"{isz} bytes (4 per point)", path)
    return lines


class OmnicReader(Reader):
    """Thermo OMNIC ``.spa`` spectrum or one spectrum of an ``.spg`` group -> FTIR spectrum."""

    name: ClassVar[str] = "omnic"
    priority: ClassVar[int] = Reader.SIGNATURE
    description: ClassVar[str] = ("Thermo OMNIC .spa spectra and .spg groups (absorbance, %T, log(1/R), "
                                  "Kubelka-Munk; wavenumber / nm / µm axes) via spectrochempy-omnic")
    technique: ClassVar[str] = "ftir"
    extensions: ClassVar[tuple[str, ...]] = (".spa", ".spg")
    url: ClassVar[str] = "https://github.com/spectrochempy/spectrochempy-omnic"
    library: ClassVar[str] = "spectrochempy-omnic"
    extra: ClassVar[str] = "omnic"
    extra_module: ClassVar[str] = "spectrochempy_omnic"
    notes: ClassVar[str] = ("absorbance, %T (as a 0-1 fraction), log(1/R), Kubelka-Munk, reflectance, single beam; "
                            "one spectrum of a group (index=); refused: .srs series, interferograms, Raman "
                            "spectra, truncated files")

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        return p.is_file() and self.matches_extension(p) and head_bytes(p, 18) in (MAGIC, SERIES_MAGIC)

    def read(self, path: Path, index: int = 0, y_kind: str | None = None) -> Any:
        """Read an OMNIC spectrum.

        Parameters
        ----------
        path : Path
            ``*.spa`` spectrum or ``*.spg`` group.
        index : int
            Spectrum of a group to read (default the first; ignored for ``.spa``).
        y_kind : {"absorbance", "transmittance"}, optional
            Override the y unit of the header (needed when it is not an IR unit code).

        Returns
        -------
        xarray.DataArray
            dim ``("wavenumber",)`` in ``1/cm`` ascending; ``acquisition``: ``y_kind``, ``y_scale``,
            ``n_scans``, ``n_background_scans``, ``laser_frequency_cm1``, ``reader_notes``.
        """
        p = require_file(Path(path), "OMNIC file")
        suffix = p.suffix.lower()
        if suffix not in (".spa", ".spg"):
            suffix = ".spa"  # a renamed file given with reader="omnic": read as a single spectrum
        data = p.read_bytes()
        lines = check_layout(data, p, suffix[1:])
        if y_kind is not None and y_kind not in ("absorbance", "transmittance"):
            raise ReaderError(f"y_kind must be 'absorbance' or 'transmittance', not {y_kind!r}", p)
        try:
            from spectrochempy_omnic import OMNICReader, OMNICReaderError
        except ImportError:
            raise ReaderError(_INSTALL, p) from None
        try:
            with _quiet_library():
                # two NULs after the end: the library's NUL-terminated text scan always stops
                r = OMNICReader(data + b"\x00\x00", suffix=suffix)
        except OMNICReaderError as exc:
            raise ReaderError(f"spectrochempy-omnic cannot read it ({exc})", p) from None
        except (struct.error, ValueError, IndexError, OverflowError) as exc:
            raise ReaderError(f"truncated or corrupt OMNIC file ({type(exc).__name__})", p) from None
        values = np.atleast_2d(np.asarray(r.data, float))
        n = values.shape[0]
        notes: list[str] = []
        if not 0 <= index < n:
            raise ReaderError(f"spectrum {index} requested, the file holds {n} (0..{n - 1})", p)
        if n > 1:
            notes.append(f"the group holds {n} spectra; spectrum {index} read (index=...)")
        y = values[index]
        x = np.asarray(r.x, float)
        header = [pos for k, pos, _ in lines if k == 2][index]
        xcode, ycode = data[header + 8], data[header + 12]
        if xcode in _REFUSED_X:
            raise ReaderError(f"the x axis is {_REFUSED_X[xcode]}, not an IR spectrum", p)
        if x.size != y.size or x.size < 3:
            raise ReaderError(f"{x.size} x values for {y.size} intensities", p)
        if not np.isfinite(x).all():
            raise ReaderError("NaN/inf first or last x in the spectrum header", p)
        if xcode in (3, 4):
            if np.any(x <= 0):
                raise ReaderError("non-positive wavelengths", p)
            x = (1.0e7 if xcode == 3 else 1.0e4) / x
            notes.append(f"axis converted from {'nanometres' if xcode == 3 else 'micrometres'} to 1/cm")
        elif xcode != 1:
            if 100 <= min(x[0], x[-1]) and max(x[0], x[-1]) <= 15000:
                notes.append(f"x unit code {xcode} not known: read as wavenumbers (values 100-15000)")
            else:
                raise ReaderError(f"x unit code {xcode} is not an IR axis (wavenumber / nm / µm)", p)
        if np.any(x <= 0) or np.max(x) > 1e5 or np.ptp(x) == 0:
            raise ReaderError(f"wavenumbers {x.min():.6g}..{x.max():.6g} 1/cm are not physical", p)
        blanked = ~np.isfinite(y)
        if blanked.all():
            raise ReaderError("every intensity is NaN/inf", p)
        if blanked.any():
            raise ReaderError(f"{int(blanked.sum())} intensities are NaN/inf (a blanked region); "
                              f"{_EXPORT} after removing the blanking", p)
        if y_kind is not None:
            kind, declared, note = y_kind, ("percent" if y_kind == "transmittance" and ycode == 16 else None), None
        elif ycode in _Y_KINDS:
            kind, declared, note = _Y_KINDS[ycode]
        elif ycode in _REFUSED_Y:
            raise ReaderError(f"the file holds {_REFUSED_Y[ycode]}, not an IR absorbance/transmittance spectrum", p)
        else:
            raise ReaderError(f"y unit code {ycode} is not known (pass y_kind='absorbance' or "
                              "'transmittance' if you know it)", p)
        if note:
            notes.append(note)
        x, y, scale = ir_ordinates(x, y, kind, declared, p, claim="the OMNIC header says absorbance",
                                   axis="spectrum")
        title = str(r.y_labels[1][index]) if r.y_labels else ""
        date = r.y_labels[0][index].isoformat() if r.y_labels and r.y_labels[0][index].year > 1900 else None
        h = header
        acq = {"y_kind": kind, "y_scale": scale, "n_scans": _u32(data, h + 36) or None,
               "n_background_scans": _u32(data, h + 52) or None,
               "laser_frequency_cm1": _finite(r.laser_frequency), "reader_notes": notes,
               "omnic_x_code": int(xcode), "omnic_y_code": int(ycode)}
        om = {"original_name": str(r.original_name or ""), "title": title, "n_spectra": n,
              "units": str(r.units), "y_title": str(r.title), "x_title": str(r.x_title),
              "description": str(r.description or ""),
              "collection_length_s": _finite(r.collection_length) if suffix == ".spa" else None,
              "optical_velocity": _finite(r.optical_velocity) if suffix == ".spa" else None}
        return new_measurement(
            y, [("wavenumber", x, "1/cm")], technique="ftir", units="dimensionless", name=kind,
            signal_type="spectrum", sample=title or p.stem, metadata={"date": date}, acquisition=acq,
            original_metadata=om, provenance=file_provenance(p, self.name, _version()), source=str(p),
            axis_ranges={"wavenumber": (0.0, 1e5)})


class _ThisThread(logging.Filter):
    """Drops the library's log records of the threads inside :func:`_quiet_library` (its INFO lines
    go to its own stderr handler); per thread, so no process-wide level change races other reads."""

    def __init__(self):
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "active", False)


_FILTER = _ThisThread()


@contextmanager
def _quiet_library():
    log = logging.getLogger("spectrochempy-omnic")
    if _FILTER not in log.filters:
        log.addFilter(_FILTER)  # idempotent, never removed
    _FILTER.local.active = True
    try:
        yield
    finally:
        _FILTER.local.active = False


def _finite(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _version() -> str | None:
    import importlib.metadata as md

    try:
        return md.version("spectrochempy-omnic")
    except md.PackageNotFoundError:
        return None
