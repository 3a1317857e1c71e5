"""Nanonis ``.sxm`` scan files -> AFM/STM map measurement.

Written here rather than through a library: ``nanonispy`` (last release 2021) fails on
numpy >= 1.24 (it uses the removed ``np.float`` alias), and ``pySPM`` pulls IPython, scikit-image
and seaborn for a format that is a text header plus one binary block. The layout (Nanonis
"SXM file format" in the Nanonis manual; the same as nanonispy's and Gwyddion's readers):

* text header of ``:KEY:`` lines, each followed by its value lines, ending with ``:SCANIT_END:``;
* the bytes ``\\x1a\\x04``; then the data: for every channel of ``:DATA_INFO:`` (in order) and every
  direction it was recorded in (``both`` = forward then backward), ``ny x nx`` values of the
  ``:SCANIT_TYPE:`` (``FLOAT MSBFIRST`` = big-endian float32), line by line in acquisition order.

The measurement is ``("channel", "y", "x")`` with channels ``<name>_forward`` / ``<name>_backward``
in the units of ``:DATA_INFO:``; backward images are mirrored left-right so their pixels line up
with the forward ones. ``y`` increases with the acquisition line index for ``:SCAN_DIR: up`` and
decreases for ``down``; coordinates are pixel centres in m about ``:SCAN_OFFSET:``. The scan angle
is recorded in ``acquisition["scan_angle_deg"]`` (the axes are not rotated). Incomplete scans (NaN
lines) are kept as NaN.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.errors import ReaderError
from .base import Reader, head_bytes, require_file
from .gwyddion import map_measurement, si_base

_DTYPES = {("FLOAT", "MSBFIRST"): ">f4", ("FLOAT", "LSBFIRST"): "<f4", ("INT", "MSBFIRST"): ">i4",
           ("INT", "LSBFIRST"): "<i4", ("UINT", "MSBFIRST"): ">u4", ("UINT", "LSBFIRST"): "<u4"}


def parse_header(text: str) -> dict[str, list[str]]:
    """``{KEY: [value lines]}`` of an SXM header (text before ``:SCANIT_END:``)."""
    out: dict[str, list[str]] = {}
    key = None
    for line in text.splitlines():
        m = re.fullmatch(r":(.+):", line.strip())
        if m and not line.startswith("\t"):
            key = m.group(1)
            out[key] = []
        elif key is not None and line.strip():
            out[key].append(line)
    return out


class NanonisReader(Reader):
    """Nanonis SXM images: every channel and direction, units from DATA_INFO, scan range in m."""

    name = "nanonis"
    priority = Reader.SIGNATURE
    library = "specproc"
    description = "Nanonis .sxm scans (documented hand-written reader): all channels/directions, m"
    technique = "afm"
    extensions = (".sxm",)
    url = "https://www.specs-group.com/nanonis/"

    def guess_can_open(self, path: Path) -> bool:
        return head_bytes(Path(path), 32).startswith(b":NANONIS_VERSION:")

    def read(self, path: Path, channel: str | None = None, sample: str | None = None):
        """Read an ``.sxm`` file.

        Parameters
        ----------
        path : Path
        channel : str, optional
            One channel, e.g. ``"Z_forward"`` (or ``"Z"`` for its forward image).
        sample : str, optional
            Sample name (default: the file stem).

        Returns
        -------
        xarray.DataArray
            dims ``("channel", "y", "x")``; ``attrs["channel_units"]``; ``acquisition`` with
            ``scan_size_x_m``, ``scan_size_y_m``, ``scan_dir``, ``scan_angle_deg``, ``bias_V``...
        """
        path = require_file(Path(path))
        raw = path.read_bytes()
        if not raw.startswith(b":NANONIS_VERSION:"):
            raise ReaderError("not a Nanonis SXM file (no :NANONIS_VERSION: header)", path)
        end = raw.find(b":SCANIT_END:")
        start = raw.find(b"\x1a\x04", end if end >= 0 else 0)
        if end < 0 or start < 0:
            raise ReaderError("header has no :SCANIT_END: / data marker: truncated file", path)
        hdr = parse_header(raw[:end].decode("latin-1"))

        def fields(key, n=None, typ=float):
            try:
                vals = " ".join(hdr[key]).split()
                out = [typ(v) for v in vals]
            except (KeyError, ValueError):
                raise ReaderError(f"header field :{key}: missing or not numeric", path) from None
            if n is not None and len(out) != n:
                raise ReaderError(f"header field :{key}: has {len(out)} values, expected {n}", path)
            return out

        nx, ny = fields("SCAN_PIXELS", 2, int)
        xr_, yr_ = fields("SCAN_RANGE", 2)
        xo, yo = fields("SCAN_OFFSET", 2) if "SCAN_OFFSET" in hdr else (0.0, 0.0)
        angle = fields("SCAN_ANGLE", 1)[0] if hdr.get("SCAN_ANGLE") else 0.0
        direction = (" ".join(hdr.get("SCAN_DIR", ["up"])).strip() or "up").lower()
        if nx < 2 or ny < 2 or nx * ny > 2 ** 28:
            raise ReaderError(f"absurd :SCAN_PIXELS: {nx} x {ny}", path)
        styp = " ".join(hdr.get("SCANIT_TYPE", ["FLOAT MSBFIRST"])).split()
        dtype = _DTYPES.get(tuple(styp[:2]))
        if dtype is None:
            raise ReaderError(f"unsupported :SCANIT_TYPE: {' '.join(styp)}", path)
        info = [ln.strip().split("\t") for ln in hdr.get("DATA_INFO", [])]
        if len(info) < 2:
            raise ReaderError("no :DATA_INFO: channel table", path)
        cols = [c.strip() for c in info[0]]
        try:
            iname, iunit, idir = cols.index("Name"), cols.index("Unit"), cols.index("Direction")
        except ValueError:
            raise ReaderError(f":DATA_INFO: lacks Name/Unit/Direction columns ({cols})", path) from None
        planes = []  # (channel name, unit, direction) in file order
        for row in info[1:]:
            if len(row) <= max(iname, iunit, idir):
                raise ReaderError(f":DATA_INFO: row {row} is incomplete", path)
            dirs = ["forward", "backward"] if row[idir].strip() == "both" else [row[idir].strip()]
            for d in dirs:
                planes.append((row[iname].strip(), row[iunit].strip(), d))
        dt = np.dtype(dtype)
        # whole values only: a truncated file may end inside one (frombuffer would refuse the rest)
        data = np.frombuffer(raw, dtype=dt, offset=start + 2, count=(len(raw) - start - 2) // dt.itemsize)
        need = len(planes) * nx * ny
        if data.size < need:
            raise ReaderError(f"data block has {data.size} values, {need} expected "
                              f"({len(planes)} images of {nx} x {ny}): truncated file", path)
        data = data[:need].astype(float).reshape(len(planes), ny, nx)
        channels = []
        for k, (name, unit, d) in enumerate(planes):
            img = data[k][:, ::-1] if d == "backward" else data[k]
            if direction == "down":
                img = img[::-1]
            u, f = si_base(unit)
            channels.append((f"{name}_{d}", img * f, u))
        if channel is not None and not any(c[0].lower() == channel.lower() for c in channels):
            channel = f"{channel}_forward" if any(c[0].lower() == f"{channel}_forward".lower()
                                                  for c in channels) else channel
        date = " ".join(hdr.get("REC_DATE", [])).strip()
        time_ = " ".join(hdr.get("REC_TIME", [])).strip()
        acq = {"format": "nanonis-sxm", "scan_dir": direction, "scan_angle_deg": float(angle),
               "bias_V": fields("BIAS", 1)[0] if hdr.get("BIAS") else None,
               "acq_time_s": fields("ACQ_TIME", 1)[0] if hdr.get("ACQ_TIME") else None,
               "rec_date": date or None, "rec_time": time_ or None}
        orig = {k: "\n".join(v) for k, v in hdr.items()}
        return map_measurement(channels, xr_, yr_, xoff=xo - xr_ / 2, yoff=yo - yr_ / 2, path=path,
                               reader=self.name, sample=sample, channel=channel, acquisition=acq,
                               original_metadata=orig, metadata={"date": f"{date} {time_}".strip() or None})
