"""HyperSpy files (``.hspy`` HDF5, ``.zspy`` Zarr) via RosettaSciIO, as EELS measurements.

Only signals with an energy-loss axis (eV) are read here (EELS spectra and spectrum images);
large files are opened lazily (``lazy=True``, HDF5 chunks read once into the array).

Before RosettaSciIO reads anything, the container must be self-contained and its decoded size
within the input limit: ``.hspy`` files with HDF5 external storage, external links or virtual
datasets, ``.zspy`` folders with symbolic links (or entries resolving outside the folder) and
zipped ``.zspy`` with absolute, ``..`` or symlink entries are refused, since each makes the file
return the bytes of other files (:mod:`specproc.io.base`).
"""
from __future__ import annotations

from pathlib import Path

from ..core.errors import ReaderError
from .base import (Reader, check_decoded_size, check_hdf5_self_contained, check_tree_self_contained,
                   check_zip_self_contained, head_bytes, library_reason, require_file)
from .gatan import read_with

_HDF5 = b"\x89HDF\r\n\x1a\n"


class HyperSpyReader(Reader):
    """HyperSpy ``.hspy`` (HDF5) and ``.zspy`` (Zarr folder/zip) EELS signals."""

    name = "hyperspy"
    priority = Reader.SIGNATURE
    library = "rosettasciio"
    description = "HyperSpy .hspy/.zspy EELS spectra and spectrum images (RosettaSciIO)"
    technique = "eels"
    extensions = (".hspy", ".zspy")
    url = "https://hyperspy.org/rosettasciio/user_guide/supported_formats/hspy.html"
    reads_folders = True  # a .zspy Zarr store may be a folder

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
        path = require_file(Path(path))
        if path.is_dir() and path.suffix.lower() != ".zspy":
            raise ReaderError("this is a folder; the hyperspy reader reads .hspy files and .zspy Zarr stores "
                              "(a folder named *.zspy)", path)
        if path.suffix.lower() == ".zspy":
            if path.is_dir():
                check_tree_self_contained(path)
            else:
                check_zip_self_contained(path)
            check_decoded_size(_zarr_decoded_size(path), path, self)
            return read_with("zspy", path, self.name, lazy=bool(lazy))
        if head_bytes(path, 8) != _HDF5:
            raise ReaderError("not a HyperSpy .hspy file (no HDF5 signature)", path)
        check_decoded_size(check_hdf5_self_contained(path), path, self)
        if lazy is None:
            lazy = path.stat().st_size > 256 * 2 ** 20
        return read_with("hspy", path, self.name, lazy=lazy)


def _zarr_decoded_size(path: Path) -> int:
    """Bytes of every array of a Zarr store (folder or zip) once decoded, from its metadata only."""
    import zarr

    store = zarr.storage.ZipStore(str(path), mode="r") if path.is_file() else zarr.storage.DirectoryStore(str(path))
    try:
        root = zarr.open(store, mode="r")
        arrays = [root] if isinstance(root, zarr.Array) else [a for _, a in root.arrays(recurse=True)]
        return sum(a.nbytes for a in arrays)
    except Exception as exc:
        raise ReaderError(f"not a readable Zarr store ({library_reason(exc)})", path) from exc
    finally:
        if hasattr(store, "close"):
            store.close()
