"""Magritek Spinsolve experiment folders (``acqu.par`` + ``data.1d``/``fid.1d``) via :mod:`nmrglue.spinsolve`.

nmrglue (``nmrglue.fileio.spinsolve``) parses ``acqu.par`` (``name = value`` lines) and the
``.1d`` binary: a 32-byte header (owner, format, version, dataType, xDim, yDim, zDim, qDim as
little-endian int32), then float32 values, the first third the x axis and the rest the complex
points, real and imaginary interleaved. Its frequency axis (``nmrglue.spinsolve.make_uc``): the
observe frequency ``b1Freq`` (MHz) is 0 ppm and the carrier lies ``lowestFrequency +
bandwidth/2`` Hz above it. In specproc's terms (docs/architecture.md): ``sf_mhz = bf1_mhz =
b1Freq``, ``o1_hz`` = that carrier offset, ``sfo1_mhz = b1Freq + o1_hz * 1e-6``, ``sw_hz =
bandwidth * 1000``; the ppm of an offset ``f`` is then ``(o1_hz + f) / b1Freq``, as nmrglue's.

What this reader adds to nmrglue's parse: the file's size checked against its header (xDim
complex points = 3 x xDim float32 after the 32-byte header; nmrglue splits whatever it finds into
thirds, so a cut file would pass as a shorter FID), the acquisition parameters checked, the
measurement built (dims ``("time",)`` in s, ``t = i / sw``).

**Quadrature convention.** nmrglue orders a Spinsolve spectrum as ``proc_base.fft`` gives it
(``fftshift(fft(fid))``, no reversal) under ``make_uc``'s descending ppm scale, and that is how
Spinsolve FIDs are processed in practice (e.g. the Cronin group's AnalyticalLabware drives
instruments this way). specproc's NMR processing reverses the transform (the Bruker/Varian
convention, ``techniques/nmr/processing.py``), so the FID is stored **conjugated**
(``acquisition["reader_notes"]`` says so): the same file then gives the same ppm through specproc
as through nmrglue (``tests/io/test_spinsolve.py``). Spinsolve FIDs have no digital-filter delay.

Not read (clear errors): multi-dimensional data (``yDim`` > 1: 2D experiments), folders with only
``spectrum.1d`` / ``spectrum_processed.1d`` (processed spectra; the reader reads FIDs).
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ReaderError
from ..core.measurement import new_measurement
from ..core.provenance import file_provenance
from ._nmr_axis import acquisition_dict, check_acquisition, jsonable, normalise_nucleus, to_float
from .base import Reader, library_reason, require_file

#: FID files of a Spinsolve folder, in nmrglue's order of preference
FID_FILES = ("data.1d", "fid.1d")
SPECTRUM_FILES = ("spectrum.1d", "spectrum_processed.1d")


def _folder_and_file(p: Path) -> tuple[Path, Path | None]:
    if p.is_file():
        return p.parent, p
    return p, next((p / f for f in FID_FILES if (p / f).is_file()), None)


class SpinsolveReader(Reader):
    """Magritek Spinsolve benchtop NMR experiment folder -> complex FID."""

    name: ClassVar[str] = "spinsolve"
    priority: ClassVar[int] = Reader.SIGNATURE
    description: ClassVar[str] = "Magritek Spinsolve experiment folder (acqu.par + data.1d/fid.1d FID) via nmrglue"
    technique: ClassVar[str] = "nmr"
    extensions: ClassVar[tuple[str, ...]] = ()
    url: ClassVar[str] = "https://nmrglue.readthedocs.io/en/latest/reference/spinsolve.html"
    library: ClassVar[str] = "nmrglue"
    notes: ClassVar[str] = ("1D FID (data.1d or fid.1d) with acqu.par: b1Freq, bandwidth, lowestFrequency, rxChannel; "
                            "refused: 2D data, folders with only processed spectra, files cut short of their header's "
                            "size")
    reads_folders: ClassVar[bool] = True

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        if p.is_file():
            return p.name in FID_FILES and (p.parent / "acqu.par").is_file()
        return p.is_dir() and (p / "acqu.par").is_file() and any((p / f).is_file() for f in FID_FILES)

    def read(self, path: Path) -> Any:
        """Read a Spinsolve experiment.

        Parameters
        ----------
        path : Path
            The experiment folder (or its ``data.1d`` / ``fid.1d``).

        Returns
        -------
        xarray.DataArray
            Complex FID, dims ``("time",)`` in s; ``attrs["nucleus"]``, ``acquisition`` (``sfo1_mhz``,
            ``sf_mhz``, ``bf1_mhz``, ``o1_hz``, ``sw_hz``, ``td``, ``ns``, ``pulprog``).
        """
        import nmrglue as ng

        p = Path(path)
        if not p.exists():
            raise ReaderError("Spinsolve folder not found", p)
        d, fid = _folder_and_file(p)
        par = d / "acqu.par"
        if not par.is_file():
            raise ReaderError("acqu.par not found in the Spinsolve folder", d)
        if fid is None:
            spectra = [f for f in SPECTRUM_FILES if (d / f).is_file()]
            raise ReaderError(("only processed spectra (" + ", ".join(spectra) + ") and no FID (data.1d): "
                               "export or keep the FID" if spectra else "no FID file (data.1d or fid.1d)"), d)
        if fid.name not in FID_FILES:
            raise ReaderError(f"{fid.name} is not a Spinsolve FID file ({' or '.join(FID_FILES)})", fid)
        require_file(par, "acqu.par")
        header = _check_1d(require_file(fid, "FID file"))
        try:
            dic, data = ng.spinsolve.read(str(d), specfile=fid.name)
        except Exception as exc:
            raise ReaderError(f"nmrglue cannot read the Spinsolve folder ({library_reason(exc)})", d) from None
        acqu = dic.get("acqu") or {}
        b1 = to_float(acqu.get("b1Freq"))
        bw = to_float(acqu.get("bandwidth"))
        low = to_float(acqu.get("lowestFrequency"))
        for key, v in (("b1Freq", b1), ("bandwidth", bw), ("lowestFrequency", low)):
            if v is None or not np.isfinite(v):
                raise ReaderError(f"acqu.par: parameter {key} is missing or not a number", par)
        sw = bw * 1000.0
        o1 = low + sw / 2
        data = np.asarray(data, np.complex128).reshape(-1)
        if data.size != header["xDim"]:
            raise ReaderError(f"{data.size} complex points read, the header says {header['xDim']}", fid)
        if not np.isfinite(data).all():
            raise ReaderError(f"{int((~np.isfinite(data)).sum())} NaN/inf values in the FID", fid)
        # nmrglue's order (fft without reversal) -> specproc's (reversed): the complex conjugate
        data = np.conj(data)
        acq = acquisition_dict(sfo1_mhz=b1 + o1 * 1e-6, bf1_mhz=b1, sf_mhz=b1, sr_hz=0.0, o1_hz=o1, sw_hz=sw,
                               td=2 * data.size, ns=acqu.get("nrScans"),
                               pulprog=acqu.get("Protocol") or acqu.get("experiment"))
        check_acquisition(acq, par)
        acq["reader_notes"] = ["FID stored as the complex conjugate of nmrglue's data (nmrglue orders Spinsolve "
                               "spectra without reversing the transform; specproc reverses it)"]
        t = np.arange(data.size) / sw
        nucleus = normalise_nucleus(acqu.get("rxChannel"))
        md = {"nucleus": nucleus, "instrument": " ".join(str(acqu[k]) for k in ("Instrument", "System")
                                                           if acqu.get(k)) or "Magritek Spinsolve",
              "date": str(acqu.get("startTime") or acqu.get("Date") or "") or None}
        sample = acqu.get("Sample") or d.name
        original = {"acqu": acqu, "proc": dic.get("proc") or {}, "header": header}
        return new_measurement(
            data, [("time", t, "s")], technique="nmr", units="arb", name="fid", signal_type="fid",
            sample=str(sample), metadata=md, acquisition=acq, original_metadata=jsonable(original),
            provenance=file_provenance(d, self.name), source=str(fid))


def _check_1d(path: Path) -> dict:
    """The 32-byte header of a Spinsolve ``.1d`` file, checked against the file's size."""
    size = path.stat().st_size
    if size < 32:
        raise ReaderError(f"{size} B: shorter than the 32-byte header of a Spinsolve .1d file", path)
    with open(path, "rb") as fh:
        raw = fh.read(32)
    keys = ("owner", "format", "version", "dataType", "xDim", "yDim", "zDim", "qDim")
    header = dict(zip(keys, struct.unpack("<8i", raw)))
    if any(header[k] > 1 for k in ("yDim", "zDim", "qDim")):
        raise ReaderError(f"a multi-dimensional Spinsolve file ({header['xDim']} x {header['yDim']} x "
                          f"{header['zDim']}): only 1D FIDs are read", path)
    n = header["xDim"]
    need = 32 + 12 * n   # x axis + real/imaginary pairs, float32
    if n < 8 or size != need:
        raise ReaderError(f"file size {size} B does not match its header ({n} complex points need {need} B: "
                          "truncated or not a Spinsolve FID)", path)
    return header
