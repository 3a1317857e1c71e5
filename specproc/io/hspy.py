"""HyperSpy files (``.hspy`` HDF5, ``.zspy`` Zarr) via RosettaSciIO, as EELS measurements.

Only signals with an energy-loss axis (eV) are read here (EELS spectra and spectrum images);
large files are opened lazily (``lazy=True``, HDF5 chunks read once into the array).
"""
from __future__ import annotations

from pathlib import Path

from ..core.errors import ReaderError
from .base import Reader, head_bytes, require_file
from .gatan import read_with

_HDF5 = b"\x89HDF\r\n\x1a\n"


class HyperSpyReader(Reader):
    """HyperSpy ``.hspy`` (HDF5) and ``.zspy`` (Zarr folder/zip) EELS signals."""

    name = "hyperspy"
    description = "HyperSpy .hspy/.zspy EELS spectra and spectrum images (RosettaSciIO)"
    technique = "eels"
    extensions = (".hspy", ".zspy")
    url = "https://hyperspy.org/rosettasciio/user_guide/supported_formats/hspy.html"

    def guess_can_open(self, path: Path) -> bool:
        suffix = path.suffix.lower()
        if suffix == ".hspy":
            return head_bytes(path, 8) == _HDF5
        return suffix == ".zspy" and path.exists()

    def read(self, path: Path, lazy: bool | None = None):
        """Read a ``.hspy`` / ``.zspy`` file.

        Parameters
        ----------
        lazy : bool, optional
            Open with ``lazy=True`` (default for files above 256 MiB); the data are then read once.
        """
        path = Path(path)
        if not path.exists():
            raise ReaderError("file not found", path)
        if path.suffix.lower() == ".zspy":
            return read_with("zspy", path, self.name, lazy=bool(lazy)) if path.is_file() or path.is_dir() else None
        require_file(path)
        if head_bytes(path, 8) != _HDF5:
            raise ReaderError("not a HyperSpy .hspy file (no HDF5 signature)", path)
        if lazy is None:
            lazy = path.stat().st_size > 256 * 2 ** 20
        return read_with("hspy", path, self.name, lazy=lazy)
