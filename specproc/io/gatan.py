"""Gatan DigitalMicrograph DM3/DM4 (EELS spectra and spectrum images) via RosettaSciIO.

Also home of :func:`rsciio_to_measurement`, the one conversion of a RosettaSciIO signal dictionary
(``{"data", "axes", "metadata", "original_metadata", "mapping"}``) into an EELS measurement,
shared by the MSA and HyperSpy readers:

* the energy-loss axis (the axis in eV, else the one named like "energy") becomes the last dim
  ``energy`` (eV); navigation axes become ``("x",)``, ``("y", "x")`` or ``("z", "y", "x")`` with their
  calibrated coordinates and units (``"px"`` when the file has none);
* ``attrs["acquisition"]``: ``beam_energy_keV``, ``collection_angle_mrad``, ``convergence_angle_mrad``,
  ``dispersion_eV`` (channel width), ``energy_offset_eV`` (first channel), ``exposure_s``,
  ``frame_number``, ``acquisition_mode``, ``spectrometer`` (None when unknown);
* DigitalMicrograph's tag ``mapping`` (what HyperSpy applies on ``hs.load``) is applied here without
  importing HyperSpy, so beam energy and angles come from the DM tags.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ReaderError
from .base import Reader, head_bytes, library_reason, require_file
from ..core.numbers import finite_or_none

#: DM3 files start with version 3, DM4 with version 4 (big-endian int32)
_DM_MAGIC = (b"\x00\x00\x00\x03", b"\x00\x00\x00\x04")
_NAV_DIMS = {1: ("x",), 2: ("y", "x"), 3: ("z", "y", "x")}
_UNIT_FIX = {"µm": "um", "μm": "um", "Å": "angstrom", "<undefined>": "px", "": "px", "pixel": "px",
             "pixels": "px"}


def _get(tree: dict, path: str, default=None):
    node: Any = tree
    for key in path.split("."):
        if not isinstance(node, dict):
            return default
        if key not in node:  # HyperSpy's tree browser writes tag names with "_" for " "
            alt = [k for k in node if str(k).replace(" ", "_") == key.replace(" ", "_")]
            if not alt:
                return default
            key = alt[0]
        node = node[key]
    return node


def _set(tree: dict, path: str, value) -> None:
    keys = path.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value


def _slug(key) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^0-9a-zA-Z_]", "_", str(key))).strip("_")


class _Tags(dict):
    """A tag group as RosettaSciIO's mapping functions expect it (HyperSpy's tree browser):
    keys also reachable slugified (``"Exposure (s)"`` -> ``"Exposure_s"``), ``get`` of dotted paths."""

    def __init__(self, d: dict):
        super().__init__(d)
        for k, v in d.items():
            self.setdefault(_slug(k), v)

    def get(self, key, default=None):
        v = _get(dict(self), str(key), None)
        return default if v is None else v


def apply_mapping(metadata: dict, original: dict, mapping: dict | None) -> dict:
    """Apply a RosettaSciIO ``mapping`` (original tag path -> (metadata path, function))."""
    md = dict(metadata)
    for src, (dst, fn) in (mapping or {}).items():
        v = _get(original, src)
        if v is None:
            continue
        try:
            v = fn(_Tags(v) if isinstance(v, dict) else v) if fn is not None else v
        except Exception:  # a malformed tag only loses that tag
            continue
        if v is not None:
            _set(md, dst, v)
    return md


_float = finite_or_none


def _unit(u) -> str:
    u = str(u or "").strip()
    return _UNIT_FIX.get(u, u)


def _axis_number(ax: dict, key: str, default: float) -> float:
    """``ax[key]`` as a float (``default`` only when the key is absent or None — a scale of 0 is 0)."""
    v = ax.get(key)
    if v is None:
        return default
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _axis_values(ax: dict, n: int, what: str, path: Path, per: str = "pixel", positive: bool = False) -> np.ndarray:
    """Coordinates of one RosettaSciIO axis (``{"scale", "offset", "size", "units"}``, or ``"axis"``
    for a non-uniform one), its calibration checked.

    A scale of 0, or a non-finite scale or offset, is a broken calibration, not "uncalibrated":
    taking 1 per channel instead (as ``scale or 1.0`` did) turned a DM/HSPY file with dispersion 0
    into a 1 eV/channel spectrum that was then fitted. ``positive`` (the energy axis) also refuses
    a negative scale.

    Raises
    ------
    ReaderError
        ``"<what> axis scale is 0 eV/channel"`` and the like.
    """
    if ax.get("axis") is not None:  # non-uniform axis: its values are checked by the caller
        return np.asarray(ax["axis"], float)
    scale, offset = _axis_number(ax, "scale", 1.0), _axis_number(ax, "offset", 0.0)
    units = str(ax.get("units") or "").strip() or "units"
    if not np.isfinite(scale) or scale == 0 or (positive and scale < 0):
        raise ReaderError(f"{what} axis scale is {scale:g} {units}/{per}: the file's calibration is broken", path)
    if not np.isfinite(offset):
        raise ReaderError(f"{what} axis offset is {offset:g} {units}: the file's calibration is broken", path)
    return offset + scale * np.arange(n)


def _energy_axis_index(axes: list[dict]) -> int | None:
    for i, ax in enumerate(axes):
        if str(ax.get("units", "")).strip().lower() in ("ev", "kev"):
            return i
    for i, ax in enumerate(axes):
        if re.search(r"energy|loss", str(ax.get("name", "")), re.I):
            return i
    return None


#: RosettaSciIO / HyperSpy signal types of X-ray (EDS) spectra; DM's own tag value is "X-ray"
_EDS_TYPES = re.compile(r"^(EDS|EDX|X-?ray)", re.I)


def refuse_non_eels(metadata: dict, energy_axis: dict, n: int, path: Path) -> None:
    """Refuse an EDS (X-ray) spectrum handed to the EELS readers.

    An EDS spectrum in a DM3/DM4 or HSPY file has the signal type ``EDS_TEM``/``EDS_SEM``
    (RosettaSciIO ``metadata["Signal"]["signal_type"]``, DM tag ``Meta Data.Signal = "X-ray"``) and
    an X-ray energy axis in keV. Read as an energy-loss spectrum it became 0-20 000 eV and failed
    later on an incidental fitting window. Refused: a signal type naming EDS, or a keV axis without
    the signal type EELS.

    Raises
    ------
    ReaderError
        ``"EDS spectrum, not EELS ..."``.
    """
    why = _eds_reason(metadata, energy_axis, n)
    if why:
        raise ReaderError(f"EDS spectrum, not EELS ({why}): the EELS analysis needs an energy-loss "
                          "spectrum; open X-ray spectra in an EDS program (e.g. HyperSpy's EDS tools)", path)


def _eds_reason(metadata: dict, energy_axis: dict, n: int) -> str | None:
    """Why a signal is an EDS spectrum (its signal type, its keV axis), or None when it is not one."""
    stype = str(_get(metadata, "Signal.signal_type") or "").strip()
    units = str(energy_axis.get("units") or "").strip()
    if not (_EDS_TYPES.match(stype) or (units.lower() == "kev" and stype.upper() != "EELS")):
        return None
    lo, hi = _axis_span(energy_axis, n)
    span = f", X-ray energy axis {lo + 0.0:.3g}-{hi + 0.0:.3g} {units}" if lo is not None else ""
    return (f"signal type {stype!r}" if stype else "no EELS signal type") + span


def _is_eels_candidate(sig: dict) -> bool:
    """A RosettaSciIO signal with an energy axis that is not an EDS spectrum."""
    axes = list(sig.get("axes") or [])
    ie = _energy_axis_index(axes)
    if ie is None:
        return False
    return _eds_reason(sig.get("metadata") or {}, axes[ie], int(axes[ie].get("size") or 0)) is None


def _axis_span(ax: dict, n: int) -> tuple[float | None, float | None]:
    """First and last coordinate of a uniform RosettaSciIO axis (None, None when not computable)."""
    scale, offset = _float(ax.get("scale")), _float(ax.get("offset"))
    if scale is None or offset is None:
        return None, None
    return offset, offset + scale * max(n - 1, 0)


def rsciio_to_measurement(d: dict, path: Path, reader: str, sample: str | None = None):
    """Turn one RosettaSciIO signal dict into an EELS measurement (see module doc).

    Raises
    ------
    ReaderError
        No energy axis, empty / non-numeric data, NaN, absurd calibration.
    """
    from ..core.measurement import new_measurement
    from ..core.provenance import file_provenance
    from ..core.result import jsonable

    data = d.get("data")
    if data is None:
        raise ReaderError("file holds no data", path)
    if not isinstance(data, np.ndarray):
        data = np.asarray(data)  # dask (lazy) arrays are computed here, in their own dtype
    axes = list(d.get("axes") or [])
    if data.ndim == 0 or len(axes) != data.ndim:
        raise ReaderError(f"data of shape {data.shape} do not match the {len(axes)} axes in the file", path)
    ie = _energy_axis_index(axes)
    if ie is None:
        raise ReaderError("no energy-loss axis (no axis in eV): not an EELS spectrum", path)
    refuse_non_eels(d.get("metadata") or {}, axes[ie], data.shape[ie], path)
    if data.ndim > 4:
        raise ReaderError(f"{data.ndim}-dimensional data are not supported (at most 3 navigation axes)", path)
    eax = axes[ie]
    energy = _axis_values(eax, data.shape[ie], "energy", path, per="channel", positive=True)
    if str(eax.get("units", "")).strip().lower() == "kev":
        energy = energy * 1000.0
    if energy.size < 2 or not np.all(np.isfinite(energy)):
        raise ReaderError("energy axis has fewer than 2 finite channels", path)
    step = np.diff(energy)
    if not (np.all(step > 0) or np.all(step < 0)):
        raise ReaderError("energy axis is not monotonic (dispersion 0 or changing sign)", path)
    if np.all(step < 0):  # increasing energy loss, whatever the file's channel order
        energy = energy[::-1]
        data = np.flip(data, axis=ie)
    data = np.moveaxis(data, ie, -1)
    nav = [axes[i] for i in range(len(axes)) if i != ie]
    names = _NAV_DIMS.get(len(nav), ())
    coords = [(names[k], _axis_values(ax, data.shape[k], names[k], path), _unit(ax.get("units")))
              for k, ax in enumerate(nav)]
    coords.append(("energy", energy, "eV"))

    original = d.get("original_metadata") or {}
    md = apply_mapping(d.get("metadata") or {}, original, d.get("mapping"))
    tem = _get(md, "Acquisition_instrument.TEM", {}) or {}
    det = _get(tem, "Detector.EELS", {}) or {}
    beam = _float(tem.get("beam_energy"))
    if beam is not None and not (1.0 <= beam <= 3000.0):
        raise ReaderError(f"beam energy {beam} keV is outside any TEM range (1-3000 keV)", path)
    acq = {
        "beam_energy_keV": beam,
        "collection_angle_mrad": _float(det.get("collection_angle")),
        "convergence_angle_mrad": _float(tem.get("convergence_angle")),
        "dispersion_eV": float(np.median(np.abs(step))),
        "energy_offset_eV": float(energy[0]),
        "exposure_s": _float(det.get("exposure", det.get("dwell_time"))),
        "frame_number": _float(det.get("frame_number")),
        "acquisition_mode": tem.get("acquisition_mode"),
        "spectrometer": det.get("spectrometer"),
    }
    title = _get(md, "General.title") or None
    mic = tem.get("microscope")
    meta = {"instrument": None if mic in (None, "", "Unknown", "[]") else str(mic), "date": _get(md, "General.date"),
            "title": title, "quantity": _get(md, "Signal.quantity")}
    sample = sample or _get(md, "Sample.description") or title or path.stem
    values = data if np.issubdtype(data.dtype, np.floating) else data.astype(np.float64)
    return new_measurement(
        values, coords, technique="eels", units="counts", sample=str(sample),
        signal_type="spectrum" if data.ndim == 1 else "spectrum_image", metadata=meta, acquisition=acq,
        original_metadata=jsonable(original), provenance=file_provenance(path, reader), source=str(path))


_FORMAT_NAMES = {"digitalmicrograph": "DigitalMicrograph DM3/DM4", "msa": "EMSA/MSA", "hspy": "HyperSpy HSPY",
                 "zspy": "HyperSpy ZSPY"}


def read_with(module: str, path: Path, reader: str, lazy: bool = False, index: int | None = None):
    """Read ``path`` with ``rsciio.<module>.file_reader`` and convert the (first EELS) signal."""
    import importlib

    require_file(path)
    try:
        mod = importlib.import_module(f"rsciio.{module}")
    except ImportError as exc:
        raise ReaderError(f"RosettaSciIO {module} reader unavailable ({exc}); install rosettasciio "
                          f"with the needed extras", path) from None
    kw = {"lazy": True} if lazy else {}
    if module == "zspy" and Path(path).is_dir():
        kw["mode"] = "r"  # rsciio opens lazy zspy folders "r+": a reader never writes to its input
    try:
        signals = mod.file_reader(str(path), **kw)
    except ReaderError:
        raise
    except Exception as exc:
        raise ReaderError(f"not a readable {_FORMAT_NAMES.get(module, module)} file ({library_reason(exc)})",
                          path) from None
    if not signals:
        raise ReaderError("file holds no signal", path)
    if index is None:  # the first EELS signal (DM files may also hold images and EDS spectra)
        with_energy = [i for i, s in enumerate(signals) if _energy_axis_index(list(s.get("axes") or [])) is not None]
        index = ([i for i in with_energy if _is_eels_candidate(signals[i])] or with_energy or [0])[0]
    if not 0 <= index < len(signals):
        raise ReaderError(f"signal index {index} out of range (file holds {len(signals)})", path)
    return rsciio_to_measurement(signals[index], path, reader)


class GatanReader(Reader):
    """Gatan DigitalMicrograph ``.dm3`` / ``.dm4``: EELS spectra and spectrum images (RosettaSciIO)."""

    name = "gatan"
    priority = Reader.SIGNATURE
    library = "rosettasciio"
    description = "Gatan DigitalMicrograph DM3/DM4 EELS spectra and spectrum images (RosettaSciIO)"
    technique = "eels"
    extensions = (".dm3", ".dm4")
    url = "https://hyperspy.org/rosettasciio/user_guide/supported_formats/digitalmicrograph.html"

    def guess_can_open(self, path: Path) -> bool:
        return path.suffix.lower() in self.extensions and head_bytes(path, 4) in _DM_MAGIC

    def read(self, path: Path, lazy: bool | None = None, index: int | None = None):
        """Read a DM3/DM4 file.

        Parameters
        ----------
        lazy : bool, optional
            Memory-map the data (RosettaSciIO ``lazy=True``); default for files above 256 MiB.
            The values are converted to an in-memory array in the file's dtype (float32 stays float32).
        index : int, optional
            Which signal of a multi-signal file (default: the first with an energy axis).
        """
        path = Path(path)
        if lazy is None:
            lazy = path.is_file() and path.stat().st_size > 256 * 2 ** 20
        if head_bytes(path, 4) not in _DM_MAGIC:
            require_file(path)
            raise ReaderError("not a DigitalMicrograph DM3/DM4 file (bad version header)", path)
        return read_with("digitalmicrograph", path, self.name, lazy=lazy, index=index)
