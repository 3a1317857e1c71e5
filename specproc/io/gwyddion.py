"""Gwyddion ``.gwy`` files (through :mod:`gwyfile`) -> AFM map measurement.

Every image channel (``/N/data`` data fields) becomes one slice of a ``("channel", "y", "x")``
measurement: values in the SI base unit of the channel (``m`` for height, ``Pa`` for a DMT
modulus map, ``V``, ``deg``...), ``x``/``y`` pixel-centre coordinates in metres (scan size
``xreal``/``yreal`` and offsets ``xoff``/``yoff`` from the file). The channel units are in
``attrs["channel_units"]`` (a list in channel order) and the scan size in
``attrs["acquisition"]`` (``scan_size_x_m``, ``scan_size_y_m``, ``pixels_x``, ``pixels_y``).
Gwyddion stores data in base SI units; files written by other programs may carry a prefixed unit
string (``nm``, ``GPa``), which is converted to the base unit here.

Channels whose pixel grid differs from the first channel's are skipped (listed in
``acquisition["skipped_channels"]``); ``read(path, channel=NAME)`` selects one channel by title.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.errors import ReaderError
from .base import Reader, head_bytes, require_file

#: SI prefixes -> power of ten (``u`` and ``µ`` both micro)
_PREFIX = {"y": -24, "z": -21, "a": -18, "f": -15, "p": -12, "n": -9, "u": -6, "µ": -6, "μ": -6, "m": -3,
           "c": -2, "d": -1, "k": 3, "M": 6, "G": 9, "T": 12}
#: base units recognised after a prefix
_BASE = ("m", "Pa", "N", "V", "A", "Hz", "s", "deg", "rad", "W", "J", "F", "S", "Ohm")


def si_base(unit: str | None) -> tuple[str, float]:
    """Base SI unit of ``unit`` and the factor converting values to it.

    ``"nm" -> ("m", 1e-9)``, ``"GPa" -> ("Pa", 1e9)``, ``"m" -> ("m", 1.0)``; unknown strings are
    returned unchanged with factor 1 (``""`` for none).
    """
    u = (unit or "").strip()
    if u in _BASE or not u:
        return u, 1.0
    m = re.fullmatch(r"([yzafpnuµμmcdkMGT])(.+)", u)
    if m and m.group(2) in _BASE:
        return m.group(2), 10.0 ** _PREFIX[m.group(1)]
    return u, 1.0


def map_measurement(channels: list[tuple[str, np.ndarray, str]], xreal: float, yreal: float, *, path: Path,
                    reader: str, xoff: float = 0.0, yoff: float = 0.0, sample: str | None = None,
                    acquisition: dict | None = None, original_metadata: dict | None = None,
                    channel: str | None = None, metadata: dict | None = None):
    """Build the ``("channel", "y", "x")`` AFM map measurement shared by the image readers.

    Parameters
    ----------
    channels : list of (name, 2D array (ny, nx) in base SI units, unit)
    xreal, yreal : float
        Scan size (m).
    channel : str, optional
        Keep only this channel (exact name, else case-insensitive); unknown -> ReaderError listing them.
    """
    from ..core.measurement import new_measurement
    from ..core.provenance import file_provenance

    if not channels:
        raise ReaderError("no image channels in the file", path)
    if channel is not None:
        names = [c[0] for c in channels]
        hit = [c for c in channels if c[0] == channel] or [c for c in channels if c[0].lower() == channel.lower()]
        if not hit:
            raise ReaderError(f"no channel {channel!r}; channels: {', '.join(names)}", path)
        channels = hit[:1]
    shape = channels[0][1].shape
    kept = [c for c in channels if c[1].shape == shape]
    skipped = [c[0] for c in channels if c[1].shape != shape]
    if len(shape) != 2 or min(shape) < 2:
        raise ReaderError(f"channel {channels[0][0]!r} is not a 2D image (shape {shape})", path)
    if not (np.isfinite(xreal) and np.isfinite(yreal) and xreal > 0 and yreal > 0):
        raise ReaderError(f"absurd scan size {xreal!r} x {yreal!r} m", path)
    if xreal > 1e-2 or yreal > 1e-2:
        raise ReaderError(f"scan size {xreal:g} x {yreal:g} m is larger than 1 cm: units are wrong", path)
    ny, nx = shape
    values = np.stack([np.asarray(c[1], float) for c in kept])
    if not np.isfinite(values).any():
        raise ReaderError("every pixel is NaN/inf", path)
    x = xoff + (np.arange(nx) + 0.5) * xreal / nx
    y = yoff + (np.arange(ny) + 0.5) * yreal / ny
    acq = {"scan_size_x_m": float(xreal), "scan_size_y_m": float(yreal), "pixels_x": int(nx), "pixels_y": int(ny),
           "offset_x_m": float(xoff), "offset_y_m": float(yoff), "skipped_channels": skipped}
    acq.update(acquisition or {})
    m = new_measurement(values, {"channel": (np.array([c[0] for c in kept], dtype=object), ""),
                                 "y": (y, "m"), "x": (x, "m")},
                        technique="afm", units="mixed" if len({c[2] for c in kept}) > 1 else kept[0][2],
                        name="afm_map", sample=sample or path.stem, signal_type="map", acquisition=acq,
                        original_metadata=original_metadata, metadata=metadata,
                        provenance=file_provenance(path, reader), allow_nan=True, source=str(path))
    m.attrs["channel_units"] = [c[2] for c in kept]
    return m


def _to_plain(obj, depth=0):
    """Gwyddion container metadata as plain types (arrays summarised), for ``original_metadata``."""
    if depth > 6:
        return None
    if isinstance(obj, dict):
        return {str(k): _to_plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return f"<array {obj.shape} {obj.dtype}>"
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, (bytes, bytearray)):
        return f"<{len(obj)} bytes>"
    return str(obj)


#: magic of Gwyddion 2.x native files, and of the legacy Gwyddion 1.x format
_MAGIC, _LEGACY_MAGIC = b"GWYP", b"GWYO"


def _check_magic(path: Path) -> None:
    """Refuse anything but a Gwyddion 2.x file; a legacy 1.x file is named as such, with the way out."""
    magic = head_bytes(path, 4)
    if magic == _LEGACY_MAGIC:
        raise ReaderError("legacy Gwyddion 1.x file (GWYO format), not the Gwyddion 2.x .gwy format this reader "
                          "reads: open it in Gwyddion 2.x and save it again as .gwy (File > Save As)", path)
    if magic != _MAGIC:
        raise ReaderError("not a Gwyddion file (no GWYP magic)", path)


def _load(path: Path):
    """The gwyfile container of ``path``; a damaged serialisation is a ReaderError."""
    import gwyfile

    try:
        return gwyfile.load(str(path))
    except Exception:  # truncated/corrupt serialisation: gwyfile fails on whatever the bytes led to
        raise ReaderError("the Gwyddion container is truncated or corrupt (its objects cannot be decoded)",
                          path) from None


def _channel_ids(obj) -> list[int]:
    """Numbers ``N`` of the ``/N/data`` channels: titled ones first, in order, then the others."""
    ids = sorted(int(k[1:-len("/data/title")]) for k in obj.keys() if re.fullmatch(r"/\d+/data/title", k))
    ids += sorted(int(k[1:-len("/data")]) for k in obj.keys()
                  if re.fullmatch(r"/\d+/data", k) and int(k[1:-len("/data")]) not in ids)
    return ids


def _channel(obj, i: int, path: Path) -> tuple[str, np.ndarray, str, tuple[float, ...]] | None:
    """Channel ``/i/data`` as ``(title, values in base SI, unit, (xreal, yreal, xoff, yoff) in m)``.

    None when ``/i/data`` is not a data field.

    Raises
    ------
    ReaderError
        Values missing or not ``xres x yres`` of them, a lateral unit that is not a length.
    """
    df = obj.get(f"/{i}/data")
    if df is None or not isinstance(df, dict) or "data" not in df:
        return None
    title = str(obj.get(f"/{i}/data/title", f"channel {i}"))
    try:
        data = np.asarray(df.data, float)
        zu, zf = si_base(df.si_unit_z.unitstr if df.get("si_unit_z") is not None else "")
        xyu, xyf = si_base(df.si_unit_xy.unitstr if df.get("si_unit_xy") is not None else "m")
        geometry = tuple(float(v) for v in (df.xreal, df.yreal, df.get("xoff", 0.0), df.get("yoff", 0.0)))
    except Exception:  # a short data array (truncated file), a missing xres/xreal...
        raise ReaderError(f"channel {title!r}: the data field is incomplete (not xres x yres values, or its "
                          "size is missing): truncated or corrupt file", path) from None
    if xyu not in ("m", ""):
        raise ReaderError(f"channel {title!r}: lateral unit {xyu!r} is not a length", path)
    return title, data * zf, zu, tuple(v * xyf for v in geometry)


class GwyddionReader(Reader):
    """Gwyddion native files (``GWYP`` magic) via gwyfile: every channel, units, scan size in m."""

    name = "gwyddion"
    priority = Reader.SIGNATURE
    library = "gwyfile"
    description = "Gwyddion .gwy AFM/SPM images (gwyfile): all channels, SI units, scan size in m"
    technique = "afm"
    extensions = (".gwy",)
    url = "https://github.com/tuxu/gwyfile"

    def guess_can_open(self, path: Path) -> bool:
        # a legacy GWYO file is claimed too: this reader is the one that can tell the user what it is
        return head_bytes(Path(path), 4) in (_MAGIC, _LEGACY_MAGIC)

    def read(self, path: Path, channel: str | None = None, sample: str | None = None):
        """Read a ``.gwy`` file.

        Parameters
        ----------
        path : Path
        channel : str, optional
            Title of one channel to keep (default: all channels of the first channel's grid).
        sample : str, optional
            Sample name (default: the file stem).

        Returns
        -------
        xarray.DataArray
            dims ``("channel", "y", "x")``; values in each channel's base SI unit
            (``attrs["channel_units"]``), ``x``/``y`` in m.

        Raises
        ------
        ReaderError
            Not a Gwyddion 2.x file (a legacy Gwyddion 1.x file is named, with how to convert it),
            a truncated or corrupt container, no image channel.
        """
        path = require_file(Path(path))
        _check_magic(path)
        obj = _load(path)
        found = [c for c in (_channel(obj, i, path) for i in _channel_ids(obj)) if c is not None]
        if not found:
            raise ReaderError("no image channels (/N/data) in the Gwyddion container", path)
        xreal, yreal, xoff, yoff = found[0][3]
        meta = {k: _to_plain(v) for k, v in obj.items() if not k.endswith("/data")}
        return map_measurement([c[:3] for c in found], xreal, yreal, xoff=xoff, yoff=yoff, path=path,
                               reader=self.name, sample=sample, channel=channel, original_metadata=meta,
                               acquisition={"format": "gwyddion"})


def write_gwy(path: str | Path, channels: list[tuple[str, np.ndarray, str]], xreal: float, yreal: float) -> None:
    """Write channels ``(title, 2D array in base SI units, unit)`` to a ``.gwy`` file (gwyfile).

    Used by the sample-data generator and tests (specproc never writes next to inputs).
    """
    from gwyfile.objects import GwyContainer, GwyDataField

    c = GwyContainer()
    for i, (title, data, unit) in enumerate(channels):
        c[f"/{i}/data/title"] = title
        c[f"/{i}/data"] = GwyDataField(np.ascontiguousarray(data, dtype=float), xreal=float(xreal),
                                       yreal=float(yreal), si_unit_xy="m", si_unit_z=unit)
    c.tofile(str(path))
