"""Bruker (Veeco/DI) Nanoscope AFM images (``*.spm``, ``*.000``, ``*.001``...) through pySPM.

pySPM (https://github.com/scholi/pySPM, Apache-2.0; ``pySPM.Bruker``) parses the text header
(``\\*File list`` ... ``\\*File list end``: the scanner list with the sensitivities, one
``\\*Ciao image list`` per channel with its data offset and length, bytes per pixel, pixels, scan
size, line direction, ``@2:Image Data`` name and ``@2:Z scale``) and scales the raw integers to
the channel's unit (raw x Z-scale / 2^(8 x bytes per pixel) x sensitivity, unit from the
sensitivity, e.g. nm). It is installed with AFMReader in the optional extra
``pip install "specproc[afm-images]"``.

What this reader adds: checks before pySPM runs (its header loop reads lines until it meets
``\\*File list end`` and would never stop on a header cut short; every channel's data must lie
inside the file with the size its header gives), the SI units (nm -> m, MPa -> Pa through the
same conversion as the Gwyddion reader), the scan size in m and the shared ``("channel", "y",
"x")`` AFM map (:func:`specproc.io.gwyddion.map_measurement`). Rows are flipped to image
orientation (first row at the top), as AFMReader does for these files. Channel names are the
file's with the direction: ``"Height Sensor (trace)"``, ``"Height Sensor (retrace)"``.

Not read (clear errors): force curves and force volumes (``\\*Ciao force image list``),
non-square images (pySPM 0.6.3 reshapes them as samples x lines, scrambling rows and columns),
channels whose unit pySPM leaves unknown (listed in ``acquisition["skipped_channels"]``).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..core.errors import ReaderError
from .base import Reader, head_bytes, library_reason, require_file

MAGIC = b"\\*File list"
_END = b"\\*File list end"
_INSTALL = 'Nanoscope files are read with pySPM: pip install "specproc[afm-images]"'
_HEADER_MAX = 1 << 21   # Nanoscope headers are 8-80 KiB
_NAME = re.compile(r'([^ ]+) \[([^]]*)] "([^"]*)"')


def _sections(header: bytes) -> list[dict[str, str]]:
    """The ``\\*Ciao image list`` sections of a Nanoscope header as ``{key: value}``."""
    out: list[dict[str, str]] = []
    cur = None
    for raw in header.split(b"\n"):
        line = raw.rstrip(b"\r").replace(b"\\", b"").decode("latin-1")
        if line.startswith("*"):
            cur = {} if line.strip() == "*Ciao image list" else None
            if cur is not None:
                out.append(cur)
            continue
        if cur is not None and ": " in line:
            k, v = line.split(": ", 1)
            cur.setdefault(k.strip(), v.strip())
    return out


class NanoscopeReader(Reader):
    """Bruker Nanoscope AFM image file -> every image channel with a known unit, SI units."""

    name: ClassVar[str] = "nanoscope"
    priority: ClassVar[int] = Reader.SIGNATURE
    description: ClassVar[str] = "Bruker Nanoscope AFM images (.spm, .000, .001...): all channels in SI units, via pySPM"
    technique: ClassVar[str] = "afm"
    extensions: ClassVar[tuple[str, ...]] = (".spm",)
    url: ClassVar[str] = "https://github.com/scholi/pySPM"
    library: ClassVar[str] = "pySPM"
    extra: ClassVar[str] = "afm-images"
    extra_module: ClassVar[str] = "pySPM"
    notes: ClassVar[str] = ("image channels (trace and retrace) in m, Pa, V... with the scan size in m; files of any "
                            "extension recognised by their header; refused: force curves/volumes, non-square images "
                            "(pySPM mis-shapes them), truncated headers or data; channels of unknown unit skipped")

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        return p.is_file() and head_bytes(p, len(MAGIC)) == MAGIC

    def read(self, path: Path, channel: str | None = None, sample: str | None = None):
        """Read the image channels of a Nanoscope file.

        Parameters
        ----------
        path : Path
        channel : str, optional
            One channel, e.g. ``"Height Sensor (trace)"`` (default: every channel with a unit).
        sample : str, optional
            Sample name (default: the file name).

        Returns
        -------
        xarray.DataArray
            dims ``("channel", "y", "x")``; ``attrs["channel_units"]`` in SI base units.
        """
        from .gwyddion import map_measurement, si_base

        p = require_file(Path(path), "Nanoscope file")
        head = head_bytes(p, _HEADER_MAX)
        if not head.startswith(MAGIC):
            raise ReaderError("not a Bruker Nanoscope file (no '\\*File list' header)", p)
        end = head.find(_END)
        if end < 0:
            raise ReaderError("truncated: the Nanoscope header has no '\\*File list end' line", p)
        header = head[:end]
        if b"\\*Ciao force" in header:
            raise ReaderError("a Nanoscope force curve / force volume file: not read (image files only)", p)
        sections = [s for s in _sections(header) if "@2:Image Data" in s]
        if not sections:
            raise ReaderError("the Nanoscope header lists no image channel (@2:Image Data)", p)
        size = p.stat().st_size
        for s in sections:
            try:
                off, length = int(s["Data offset"]), int(s["Data length"])
                bpp = int(s.get("Bytes/pixel", "2"))
                nx, ny = int(s["Samps/line"]), int(s["Number of lines"])
            except (KeyError, ValueError):
                raise ReaderError(f"channel {s.get('@2:Image Data')!r}: data offset/length/pixels missing or not "
                                  "numbers in the header", p) from None
            if bpp not in (2, 4) or nx < 2 or ny < 2 or nx * ny * bpp > length:
                raise ReaderError(f"channel {s['@2:Image Data']!r}: {nx} x {ny} pixels of {bpp} bytes do not fit "
                                  f"its {length} data bytes", p)
            if nx != ny:
                # pySPM 0.6.3 reshapes the data as (Samps/line, Number of lines): rows and columns of a
                # non-square image come out scrambled, so such files are refused rather than misread
                raise ReaderError(f"channel {s['@2:Image Data']!r}: a non-square image ({ny} lines x {nx} samples) "
                                  "is not read (pySPM mis-shapes non-square Nanoscope images); export it as .gwy "
                                  "or crop it square in NanoScope Analysis", p)
            if off < end or off + nx * ny * bpp > size:
                raise ReaderError(f"truncated: channel {s['@2:Image Data']!r} data (bytes {off}-{off + nx * ny * bpp})"
                                  f" end past the end of the file ({size} bytes)", p)
        try:
            import pySPM
        except ImportError:
            raise ReaderError(_INSTALL, p) from None
        try:
            scan = pySPM.Bruker(p)
        except Exception as exc:
            raise ReaderError(f"pySPM cannot parse the header ({library_reason(exc)})", p) from None
        channels, skipped, xreal, yreal = [], [], None, None
        for s in sections:
            m = _NAME.match(s["@2:Image Data"])
            if not m:
                skipped.append(s["@2:Image Data"])
                continue
            cname = m.group(3)
            retrace = s.get("Line Direction", "Trace").strip() == "Retrace"
            label = _label(s)
            if channel is not None and label != channel:
                continue
            try:
                img = scan.get_channel(cname, backward=retrace, lazy=False)
            except Exception as exc:
                raise ReaderError(f"channel {label!r} cannot be decoded ({library_reason(exc)})", p) from None
            unit, factor = si_base(str(img.zscale))
            if not unit or "?" in unit:   # pySPM's "?" (no sensitivity unit in the header)
                skipped.append(f"{label} [{img.zscale}]")
                continue
            values = np.flipud(np.asarray(img.pixels, float)) * factor
            real = img.size.get("real") or {}
            lu, lf = si_base(str(real.get("unit", "")))
            if lu != "m":
                raise ReaderError(f"channel {label!r}: scan size unit {real.get('unit')!r} is not a length", p)
            cx, cy = float(real["x"]) * lf, float(real["y"]) * lf
            if xreal is None:
                xreal, yreal = cx, cy
            channels.append((label, values, unit))
        if channel is not None and not channels:
            names = [_label(s) for s in sections if _NAME.match(s["@2:Image Data"])]
            raise ReaderError(f"no channel {channel!r} with a known unit; channels: {', '.join(names)}", p)
        if not channels:
            raise ReaderError(f"no channel with a known unit ({', '.join(skipped)})", p)
        acq = {"software_version": _header_value(header, "Version"), "pyspm_version": _version()}
        m = map_measurement(channels, xreal, yreal, path=p, reader=self.name, sample=sample or p.name,
                            acquisition=acq, original_metadata={"channels": sections})
        m.attrs["acquisition"] = {**m.attrs["acquisition"],
                                  "skipped_channels": list(m.attrs["acquisition"]["skipped_channels"]) + skipped}
        return m


def _label(section: dict[str, str]) -> str:
    """``"Height Sensor (trace)"``: the channel name of ``@2:Image Data`` and the line direction."""
    m = _NAME.match(section["@2:Image Data"])
    retrace = section.get("Line Direction", "Trace").strip() == "Retrace"
    return f"{m.group(3) if m else section['@2:Image Data']} ({'retrace' if retrace else 'trace'})"


def _header_value(header: bytes, key: str) -> str | None:
    m = re.search(rb"\\" + re.escape(key.encode()) + rb": *([^\r\n]*)", header)
    return m.group(1).decode("latin-1").strip() if m else None


def _version() -> str | None:
    import importlib.metadata as md

    try:
        return md.version("pySPM")
    except md.PackageNotFoundError:
        return None
